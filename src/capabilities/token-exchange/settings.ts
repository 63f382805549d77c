import { defineSlice, integer, setting } from '../../platform/config/settings.js';

/** Token exchange (RFC 8693). */
export const tokenExchangeSettings = defineSlice({
  name: 'token-exchange',
  settings: {
    tokenExchangeMaxDelegationDepth: setting('TOKEN_EXCHANGE_MAX_DELEGATION_DEPTH', integer(1, 10).default(5).describe('Most actors a delegated token may name (RFC 8693 §4.1: its act claim nested this deep); an exchange that would add one more answers invalid_request.')),
  },
});
