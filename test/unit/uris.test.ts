import { describe, expect, it } from 'vitest';
import { isHttpsOrLoopbackHttp, isLoopbackHost, LOOPBACK_HOSTS } from '../../src/platform/uris.js';

describe('loopback hosts (RFC 8252 §7.3, §8.3)', () => {
  it('are localhost, 127.0.0.1 and [::1], as URL.hostname spells them', () => {
    expect([...LOOPBACK_HOSTS].sort()).toEqual(['127.0.0.1', '[::1]', 'localhost']);
    for (const url of ['http://localhost:8080/', 'http://127.0.0.1/', 'http://[::1]:3000/', 'http://LOCALHOST/', 'http://[0:0:0:0:0:0:0:1]/']) {
      expect(isLoopbackHost(new URL(url).hostname), url).toBe(true);
    }
  });
  it('are nothing else: not other 127/8 addresses, subdomains, look-alikes or the unbracketed IPv6 form', () => {
    for (const host of ['127.0.0.2', 'localhost.example.com', 'app.localhost', '127.0.0.1.nip.io', '::1', '0.0.0.0', 'example.com', '']) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});

describe('https, or http on a loopback host (RFC 8414 §2, RFC 8252 §8.3)', () => {
  it('accepts any https URL', () => {
    for (const u of ['https://id.example.com', 'https://127.0.0.1:8443/x', 'https://localhost']) expect(isHttpsOrLoopbackHttp(new URL(u)), u).toBe(true);
  });
  it('accepts http only on a loopback host', () => {
    for (const u of ['http://localhost:8080', 'http://127.0.0.1/cb', 'http://[::1]:9/']) expect(isHttpsOrLoopbackHttp(new URL(u)), u).toBe(true);
    for (const u of ['http://id.example.com', 'http://127.0.0.2/', 'http://localhost.evil.com/']) expect(isHttpsOrLoopbackHttp(new URL(u)), u).toBe(false);
  });
  it('refuses every other scheme, even on a loopback host', () => {
    for (const u of ['ftp://localhost/', 'ws://127.0.0.1/', 'wss://id.example.com/', 'file:///etc/passwd', 'com.example.app://localhost/cb']) {
      expect(isHttpsOrLoopbackHttp(new URL(u)), u).toBe(false);
    }
  });
});
