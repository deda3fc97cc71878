import { describe, expect, it } from 'vitest';
import { componentKey, keyChecker } from '../../src/common/http/key-auth.js';

describe('component keys', () => {
  it('derives each component its own key as HMAC-SHA256(clusterKey, "flynn-ts <component>"), stable across versions', () => {
    // The value an operator computes by hand (docs/security.md) must never change.
    expect(componentKey('cluster-key', 'host')).toBe('f348d3c475bdb0b728a26f6d565b3d6b4aa72f9ab2f1485ce2c2f7d356619c42');
    const keys = new Set([componentKey('cluster-key', 'host'), componentKey('cluster-key', 'shelf'), componentKey('cluster-key', 'discovery'), componentKey('other-key', 'host'), 'cluster-key']);
    expect(keys.size).toBe(5);
  });

  it('accepts a component key only for its own component, as Bearer or as a Basic password', () => {
    const host = keyChecker(componentKey('cluster-key', 'host'));
    expect(host(`Bearer ${componentKey('cluster-key', 'host')}`)).toBe('ok');
    expect(host(`Basic ${Buffer.from(`any:${componentKey('cluster-key', 'host')}`).toString('base64')}`)).toBe('ok');
    expect(host('Bearer cluster-key')).toBe('wrong');
    expect(host(`Bearer ${componentKey('cluster-key', 'shelf')}`)).toBe('wrong');
    expect(host(undefined)).toBe('missing');
    expect(host('Token x')).toBe('missing');
  });
});
