import { createPublicKey, verify, constants, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { BuiltinError, NotImplementedError } from './builtin.js';
import { oidKey } from './der.js';
import type { Certificate } from './x509-certificate.js';
import { chainConstraintsError } from './x509-constraints.js';
import { PK, SIG_ALGS, pssAlgorithm } from './x509-public-key.js';

/** x509.VerifyOptions as OPA builds them from its options object. */
export interface VerifyOptions {
  dnsName?: string;
  /** Nanoseconds since the epoch; the evaluation's clock when absent. */
  currentTime?: bigint;
  /** x509.ExtKeyUsage numbers; [ServerAuth] when empty, as Go. */
  keyUsages: number[];
}

const EKU_ANY = 0;
const EKU_SERVER_AUTH = 1;
const KEY_USAGE_CERT_SIGN = 1 << 5;
const MAX_SIGNATURE_CHECKS = 100;

class VerifyError extends Error {}

/**
 * OPA's verifyX509CertificateChain: the first certificate is the root, the last the leaf, those between
 * intermediates; Go's Certificate.Verify builds chains from the leaf and returns the first one found.
 * Throws VerifyError when Go's Verify fails, NotImplementedError for what this engine does not evaluate
 * (requireExplicitPolicy in the chain, unusual email forms under name constraints: the evaluation fails
 * rather than guess).
 */
export function verifyChain(certs: Certificate[], opts: VerifyOptions, now: bigint): Certificate[] {
  if (certs.length < 2) throw new BuiltinError('operand 1 must supply at least two certificates to be able to verify');
  const root = certs[0] as Certificate;
  const intermediates = dedupe(certs.slice(1, -1));
  const leaf = certs[certs.length - 1] as Certificate;
  const time = opts.currentTime ?? now;

  isValid(leaf, 'leaf', [], time);
  if (opts.dnsName) verifyHostname(leaf, opts.dnsName);
  const chains = leaf.raw.equals(root.raw) ? [[leaf]] : buildChains(leaf, [leaf], { root, intermediates, time, checks: { n: 0 } });
  const usages = opts.keyUsages.length === 0 ? [EKU_SERVER_AUTH] : opts.keyUsages;
  const any = opts.keyUsages.includes(EKU_ANY);
  const valid = chains.filter((chain) => {
    if (chain.length > 1 && chain.some((c) => c.ext.hasRequireExplicitPolicy)) {
      throw new NotImplementedError('x509 policy constraints (requireExplicitPolicy) in a chain are not evaluated by the embedded engine; use the remote engine');
    }
    if (!any && !chainAllowsUsages(chain, usages)) return false;
    return chainConstraintsError(chain.map((c) => ({ constraints: c.ext.nameConstraints, ...c.ext }))) === undefined;
  });
  if (valid.length === 0) throw new VerifyError('x509: no valid chains');
  return valid[0] as Certificate[];
}

/** True when verification failed as Go's Verify fails (OPA then answers [false, []]). */
export const isVerifyFailure = (err: unknown): boolean => err instanceof VerifyError;

interface Pools {
  root: Certificate;
  intermediates: Certificate[];
  time: bigint;
  checks: { n: number };
}

function buildChains(c: Certificate, chain: Certificate[], pools: Pools): Certificate[][] {
  const chains: Certificate[][] = [];
  const consider = (type: 'root' | 'intermediate', candidate: Certificate): void => {
    if (++pools.checks.n > MAX_SIGNATURE_CHECKS) throw new VerifyError('x509: signature check attempts limit reached while verifying certificate chain');
    if (candidate.value.PublicKey === null || alreadyInChain(candidate, chain)) return;
    try {
      checkSignatureFrom(c, candidate);
      isValid(candidate, type, chain, pools.time);
    } catch (err) {
      if (err instanceof VerifyError) return;
      throw err;
    }
    if (type === 'root') chains.push([...chain, candidate]);
    else chains.push(...buildChains(candidate, [...chain, candidate], pools));
  };
  for (const p of potentialParents(c, [pools.root])) consider('root', p);
  for (const p of potentialParents(c, pools.intermediates)) consider('intermediate', p);
  if (chains.length === 0) throw new VerifyError('x509: certificate signed by unknown authority');
  return chains;
}

/** CertPool.findPotentialParents: same subject as the issuer; matching key ids first, then no id, then mismatching. */
function potentialParents(c: Certificate, pool: Certificate[]): Certificate[] {
  const akid = c.value.AuthorityKeyId;
  const rank = (p: Certificate): number => {
    const skid = p.value.SubjectKeyId;
    if (akid && skid && akid === skid) return 0;
    if (!akid || !skid) return 1;
    return 2;
  };
  return pool.filter((p) => p.rawSubject.equals(c.rawIssuer)).sort((a, b) => rank(a) - rank(b));
}

function alreadyInChain(candidate: Certificate, chain: Certificate[]): boolean {
  return chain.some((c) => {
    if (!c.rawSubject.equals(candidate.rawSubject) || !c.spki.equals(candidate.spki)) return false;
    if (!c.ext.sanValue && !candidate.ext.sanValue) return true;
    if (!c.ext.sanValue || !candidate.ext.sanValue) return false;
    return c.ext.sanValue.equals(candidate.ext.sanValue);
  });
}

function isValid(c: Certificate, type: 'leaf' | 'intermediate' | 'root', chain: Certificate[], now: bigint): void {
  if (c.ext.unhandledCritical > 0) throw new VerifyError('x509: unhandled critical extension');
  const child = chain[chain.length - 1];
  if (child && !child.rawIssuer.equals(c.rawSubject)) throw new VerifyError('x509: issuer name does not match subject from issuing certificate');
  if (now < c.notBefore || now > c.notAfter) throw new VerifyError('x509: certificate has expired or is not yet valid');
  if (type === 'intermediate' && (!c.ext.basicConstraintsValid || !c.ext.isCA)) throw new VerifyError('x509: certificate is not authorized to sign other certificates');
  if (c.ext.basicConstraintsValid && c.ext.maxPathLen >= 0 && chain.length - 1 > c.ext.maxPathLen) throw new VerifyError('x509: too many intermediates for path length constraint');
}

/** Certificate.CheckSignatureFrom, with Go's refusal of MD5 and SHA-1 signatures and of RSA keys below 1024 bits. */
function checkSignatureFrom(c: Certificate, parent: Certificate): void {
  if ((parent.version === 3 && !parent.ext.basicConstraintsValid) || (parent.ext.basicConstraintsValid && !parent.ext.isCA)) throw new VerifyError('x509: invalid signature: parent certificate cannot sign this kind of certificate');
  if (parent.ext.keyUsage !== 0 && (parent.ext.keyUsage & KEY_USAGE_CERT_SIGN) === 0) throw new VerifyError('x509: invalid signature: parent certificate cannot sign this kind of certificate');
  if (parent.publicKeyAlgorithm === PK.Unknown) throw new VerifyError('x509: cannot verify signature: algorithm unimplemented');
  const oid = oidKey(c.signatureOid);
  const pss = oid === '1.2.840.113549.1.1.10' ? pssAlgorithm(c.signatureParams) : undefined;
  const alg = pss ? [pss[0], pss[1], PK.RSA] : SIG_ALGS[oid];
  if (!alg || (oid === '1.3.101.112' && c.signatureParams)) throw new VerifyError('x509: cannot verify signature: algorithm unimplemented');
  const [, hash, keyAlg] = alg as [number, string, number];
  if (hash === 'md2' || hash === 'md5' || hash === 'sha1') throw new VerifyError('x509: cannot verify signature: insecure algorithm');
  if (keyAlg === PK.DSA) throw new VerifyError('x509: cannot verify signature: algorithm unimplemented');
  if (keyAlg !== parent.publicKeyAlgorithm) throw new VerifyError('x509: signature algorithm specifies a different public key type');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: parent.spki, format: 'der', type: 'spki' });
  } catch {
    throw new VerifyError('x509: cannot verify signature: bad public key');
  }
  if (keyAlg === PK.RSA && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 1024) throw new VerifyError('crypto/rsa: 1024-bit or larger RSA keys required');
  let ok: boolean;
  try {
    if (keyAlg === PK.Ed25519) ok = verify(null, c.tbs, key, c.signature);
    else if (pss) ok = verify(hash, c.tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss[2] }, c.signature);
    else ok = verify(hash, c.tbs, key, c.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new VerifyError('x509: invalid signature');
}

/** Go's checkChainForKeyUsage: every certificate with EKUs must allow one of the requested usages (or any). */
function chainAllowsUsages(chain: Certificate[], requested: number[]): boolean {
  const usages = [...requested];
  let remaining = usages.length;
  for (let i = chain.length - 1; i >= 0; i--) {
    const c = chain[i] as Certificate;
    if (c.ext.extKeyUsage.length === 0 && c.ext.unknownExtKeyUsage === 0) continue;
    if (c.ext.extKeyUsage.includes(EKU_ANY)) continue;
    for (let j = 0; j < usages.length; j++) {
      if (usages[j] === -1) continue;
      if (c.ext.extKeyUsage.includes(usages[j] as number)) continue;
      usages[j] = -1;
      if (--remaining === 0) return false;
    }
  }
  return true;
}

function verifyHostname(c: Certificate, h: string): void {
  const candidateIp = h.length >= 3 && h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (isIP(candidateIp)) {
    const want = ipBytes(candidateIp);
    if (!c.ext.ipAddresses.some((ip) => ipBytes16(ip).equals(want))) throw new VerifyError('x509: certificate is not valid for any names');
    return;
  }
  const name = h.replace(/[A-Z]/g, (x) => x.toLowerCase());
  const validName = validHostname(name, false);
  for (const match of c.ext.dnsNames) {
    if (validName && validHostname(match, true) ? matchHostnames(match, name) : matchExactly(match, name)) return;
  }
  throw new VerifyError('x509: certificate is not valid for any names');
}

function ipBytes(s: string): Buffer {
  if (isIP(s) === 4) return ipBytes16(Buffer.from(s.split('.').map(Number)));
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const part = (x: string | undefined): number[] => {
    if (!x) return [];
    return x.split(':').flatMap((g) => (g.includes('.') ? [...ipBytes(g).subarray(12)].reduce<number[]>((a, b, i) => (i % 2 ? [...a.slice(0, -1), ((a[a.length - 1] as number) << 8) | b] : [...a, b]), []) : [parseInt(g, 16)]));
  };
  const h = part(head);
  const t = part(tail);
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  return Buffer.from(groups.flatMap((g) => [g >> 8, g & 0xff]));
}

function ipBytes16(ip: Buffer): Buffer {
  return ip.length === 4 ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), ip]) : ip;
}

function validHostname(host: string, isPattern: boolean): boolean {
  const h = isPattern ? host : host.replace(/\.$/, '');
  if (h.length === 0 || h === '*') return false;
  return h.split('.').every((part, i) => {
    if (part === '') return false;
    if (isPattern && i === 0 && part === '*') return true;
    return [...part].every((c, j) => /[a-zA-Z0-9_]/.test(c) || (c === '-' && j !== 0));
  });
}

function matchExactly(a: string, b: string): boolean {
  if (a === '' || a === '.' || b === '' || b === '.') return false;
  return a.toLowerCase() === b.toLowerCase();
}

function matchHostnames(pattern: string, host: string): boolean {
  const p = pattern.replace(/[A-Z]/g, (x) => x.toLowerCase());
  const hostParts = host.replace(/\.$/, '').split('.');
  if (p.length === 0 || host.length === 0) return false;
  const pp = p.split('.');
  if (pp.length !== hostParts.length) return false;
  return pp.every((part, i) => (i === 0 && part === '*') || part === hostParts[i]);
}

function dedupe(certs: Certificate[]): Certificate[] {
  const out: Certificate[] = [];
  for (const c of certs) if (!out.some((o) => o.raw.equals(c.raw))) out.push(c);
  return out;
}
