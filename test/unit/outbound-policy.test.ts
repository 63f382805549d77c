import { describe, expect, it } from 'vitest';
import { internalRange, parseIp } from '../../src/platform/outbound/addresses.js';
import { allowListEntry, OutboundPolicy } from '../../src/platform/outbound/policy.js';

const HTTPS_ISSUER = 'https://id.example.com';
const LOOPBACK_ISSUER = 'http://localhost:8080';
const policy = (allowed: string[] = [], issuer = HTTPS_ISSUER) => new OutboundPolicy({ issuer, allowed });
const rangeOf = (address: string) => internalRange(parseIp(address)!);

describe('address ranges a server-side request must not reach', () => {
  it.each([
    ['0.0.0.0', 'unspecified'], ['0.1.2.3', 'unspecified'], ['::', 'unspecified'],
    ['127.0.0.1', 'loopback'], ['127.255.255.254', 'loopback'], ['::1', 'loopback'],
    ['10.0.0.1', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.168.1.1', 'private'], ['100.64.0.1', 'private'],
    ['fec0::1', 'private'], ['64:ff9b:1::a00:1', 'private'],
    ['169.254.169.254', 'link-local'], ['169.254.0.1', 'link-local'], ['fe80::1', 'link-local'], ['fe80::1%eth0', 'link-local'], ['febf::1', 'link-local'],
    ['fc00::1', 'unique-local'], ['fd12:3456::1', 'unique-local'],
    ['224.0.0.1', 'multicast'], ['239.255.255.250', 'multicast'], ['ff02::1', 'multicast'], ['ff0e::1', 'multicast'],
    ['255.255.255.255', 'reserved'], ['240.0.0.1', 'reserved'], ['192.0.0.8', 'reserved'], ['192.0.2.1', 'reserved'], ['198.18.0.1', 'reserved'],
    ['198.51.100.1', 'reserved'], ['203.0.113.1', 'reserved'], ['2001:db8::1', 'reserved'], ['100::1', 'reserved'], ['2001::1', 'reserved'],
    ['::7f00:1', 'reserved'], ['::10.0.0.1', 'reserved'], ['4000::1', 'reserved'], ['::2', 'reserved'],
  ])('%s is %s', (address, range) => {
    expect(rangeOf(address)).toBe(range);
  });

  it.each([
    ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'], ['0:0:0:0:0:ffff:7f00:1', 'loopback'], ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'link-local'], ['::ffff:0.0.0.0', 'unspecified'], ['::ffff:0:127.0.0.1', 'loopback'],
    ['64:ff9b::127.0.0.1', 'loopback'], ['64:ff9b::a9fe:a9fe', 'link-local'], ['2002:7f00:1::', 'loopback'], ['2002:c0a8:101::1', 'private'],
  ])('an IPv6 address carrying an IPv4 one is judged by it: %s is %s', (address, range) => {
    expect(rangeOf(address)).toBe(range);
  });

  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e',
    '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'])('%s is public', (address) => {
    expect(rangeOf(address)).toBeUndefined();
  });
});

describe('the URL rule: judged before anything is sent, and at registration', () => {
  it('on an https issuer: https only', () => {
    const p = policy(['127.0.0.1']);
    expect(p.targetProblem('https://keys.example.com/jwks')).toBeUndefined();
    for (const uri of ['http://keys.example.com/jwks', 'http://127.0.0.1:9/jwks', 'http://localhost/bc', 'ftp://keys.example.com/', 'file:///etc/passwd',
      'gopher://127.0.0.1:6379/_INFO', 'ws://keys.example.com/', 'data:application/json,{}', 'not a url', '']) {
      expect(p.targetProblem(uri), uri).toBe('must be an https URL');
    }
  });

  it('on a loopback issuer: http too, to a loopback host only', () => {
    const p = policy(['127.0.0.1', '::1', '10.0.0.0/8'], LOOPBACK_ISSUER);
    for (const uri of ['http://127.0.0.1:9000/jwks', 'http://[::1]/bc', 'https://127.0.0.1/x', 'http://2130706433/x']) expect(p.targetProblem(uri), uri).toBeUndefined();
    for (const uri of ['http://keys.example.com/jwks', 'http://10.0.0.1/jwks', 'http://127.0.0.2/x', 'http://0x7f000002/x']) {
      expect(p.targetProblem(uri), uri).toBe('must be an https URL (http only on loopback)');
    }
  });

  it('refuses credentials in the URL', () => {
    expect(policy().targetProblem('https://user:pass@keys.example.com/jwks')).toBe('must not contain credentials');
    expect(policy().targetProblem('https://user@keys.example.com/jwks')).toBe('must not contain credentials');
  });

  it.each([
    ['https://127.0.0.1/jwks', '127.0.0.1 is loopback'],
    ['https://2130706433/jwks', '127.0.0.1 is loopback'], // decimal
    ['https://0177.0.0.1/jwks', '127.0.0.1 is loopback'], // octal
    ['https://0x7f.1/jwks', '127.0.0.1 is loopback'], // hex, short
    ['https://0x7f000001/jwks', '127.0.0.1 is loopback'],
    ['https://127.1/jwks', '127.0.0.1 is loopback'], // short
    ['https://017700000001/jwks', '127.0.0.1 is loopback'],
    ['https://127.0.0.1./jwks', '127.0.0.1 is loopback'], // trailing dot
    ['https://%31%32%37.0.0.1/jwks', '127.0.0.1 is loopback'], // percent-encoded
    ['https://１２７.０.０.１/jwks', '127.0.0.1 is loopback'], // full-width digits
    ['https://0/jwks', '0.0.0.0 is unspecified'],
    ['https://0.0.0.0:8443/jwks', '0.0.0.0 is unspecified'],
    ['https://[::]/jwks', ':: is unspecified'],
    ['https://[::1]/jwks', '::1 is loopback'],
    ['https://[0:0:0:0:0:0:0:1]/jwks', '::1 is loopback'],
    ['https://[::ffff:127.0.0.1]/jwks', '::ffff:7f00:1 is loopback'],
    ['https://[::ffff:7f00:1]/jwks', '::ffff:7f00:1 is loopback'],
    ['https://[64:ff9b::127.0.0.1]/jwks', '64:ff9b::7f00:1 is loopback'],
    ['https://169.254.169.254/latest/meta-data/', '169.254.169.254 is link-local'],
    ['https://[fd00:ec2::254]/', 'fd00:ec2::254 is unique-local'],
    ['https://10.0.0.1/', '10.0.0.1 is private'],
    ['https://0xa.1/', '10.0.0.1 is private'],
    ['https://192.168.0.1/', '192.168.0.1 is private'],
    ['https://224.0.0.1/', '224.0.0.1 is multicast'],
    ['https://255.255.255.255/', '255.255.255.255 is reserved'],
    ['https://localhost/jwks', 'localhost is loopback'],
    ['https://LOCALHOST./jwks', 'localhost is loopback'],
    ['https://keys.localhost/jwks', 'keys.localhost is loopback'],
  ])('refuses %s (%s)', (uri, why) => {
    expect(policy().targetProblem(uri)).toBe(`must not point at an internal address (${why})`);
  });

  it('leaves any other host name to the connect-time check of its addresses', () => {
    for (const uri of ['https://keys.example.com/jwks', 'https://127.0.0.1.nip.io/jwks', 'https://metadata.google.internal/', 'https://8.8.8.8/x', 'https://[2606:4700::1111]/']) {
      expect(policy().targetProblem(uri), uri).toBeUndefined();
    }
  });
});

describe('the allow-list (OUTBOUND_ALLOWED_HOSTS)', () => {
  it('lets through an allowed address, range or host name, and nothing else', () => {
    const p = policy(['127.0.0.1', '10.20.0.0/16', 'fd00::/8', 'keys.corp.example', 'localhost']);
    for (const uri of ['https://127.0.0.1/', 'https://2130706433/', 'https://[::ffff:127.0.0.1]/', 'https://10.20.3.4/', 'https://[fd12::1]/', 'https://localhost/']) {
      expect(p.targetProblem(uri), uri).toBeUndefined();
    }
    for (const uri of ['https://127.0.0.2/', 'https://10.21.0.1/', 'https://[::1]/', 'https://[fe80::1]/']) expect(p.targetProblem(uri), uri).toMatch(/internal address/);
    // Connect time: an allowed name's addresses are not checked; other names' are, one by one.
    expect(p.addressProblem('keys.corp.example', '10.99.0.1')).toBeUndefined();
    expect(p.addressProblem('KEYS.CORP.EXAMPLE.', '10.99.0.1')).toBeUndefined();
    expect(p.addressProblem('other.example', '10.20.0.9')).toBeUndefined();
    expect(p.addressProblem('other.example', '10.99.0.1')).toBe('must not point at an internal address (10.99.0.1 is private)');
    expect(p.addressProblem('other.example', '93.184.216.34')).toBeUndefined();
  });

  it('localhost needs its name, or a loopback address, allowed', () => {
    expect(policy(['::1']).targetProblem('https://localhost/')).toBeUndefined();
    expect(policy(['127.0.0.0/8']).targetProblem('https://app.localhost/')).toBeUndefined();
    expect(policy(['10.0.0.1']).targetProblem('https://localhost/')).toBe('must not point at an internal address (localhost is loopback)');
  });

  it('an allowed host still needs https on an https issuer', () => {
    expect(policy(['127.0.0.1', 'keys.corp.example']).targetProblem('http://keys.corp.example/jwks')).toBe('must be an https URL');
  });

  it('takes host names, addresses (IPv4 as a dotted quad) and CIDR ranges only', () => {
    for (const entry of ['127.0.0.1', '::1', '[::1]', '10.0.0.0/8', 'fd00::/8', 'keys.corp.example', 'Keys.Corp.Example.', 'localhost', 'under_score.example']) {
      expect(allowListEntry(entry), entry).toBeDefined();
    }
    for (const entry of ['127.1', '2130706433', '0x7f000001', '0177.0.0.1', '10.0.0.0/33', '::/129', 'a/b', 'http://x.example', 'x..example', '-x.example', '', '*.example.com', 'keys.example.com:443']) {
      expect(allowListEntry(entry), entry).toBeUndefined();
    }
    expect(() => policy(['127.1'])).toThrow('not a host name, IP address or CIDR range: 127.1');
  });
});
