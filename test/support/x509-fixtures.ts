import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Certificates, requests and keys made with openssl for comparing the x509 builtins with OPA: an EC root, an
 * RSA intermediate (pathlen 0, policies, CRL and AIA URLs), an Ed25519 leaf with every SAN type and EKUs, a
 * SHA-1 signed leaf (Go refuses it in verification), an intermediate with name constraints and leaves
 * within and outside them, an RSA-PSS
 * self-signed certificate, a v1 certificate, CSRs, and private keys in PKCS#1, PKCS#8 and SEC 1.
 */
export interface X509Fixtures {
  text(name: string): string;
  /** The base64 DER body of a PEM file (its lines joined). */
  der(name: string): string;
}

export async function makeX509Fixtures(dir: string): Promise<X509Fixtures> {
  const ossl = async (...args: string[]): Promise<void> => {
    await run('openssl', args, { cwd: dir });
  };
  const ext = async (name: string, lines: string[]): Promise<void> => writeFile(join(dir, name), `${lines.join('\n')}\n`);
  await ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root.key');
  await ossl('req', '-x509', '-new', '-key', 'root.key', '-subj', '/C=US/ST=CA/L=SF/O=Root Org/OU=Unit/CN=Root CA/serialNumber=42/postalCode=94000/street=Main St',
    '-days', '3650', '-out', 'root.crt', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  await ossl('genrsa', '-out', 'int.key', '2048');
  await ossl('req', '-new', '-key', 'int.key', '-subj', '/O=Int Org/CN=Intermediate CA', '-out', 'int.csr');
  await ext('int.ext', [
    'basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid',
    'certificatePolicies=1.2.3.4,2.23.140.1.2.1', 'crlDistributionPoints=URI:http://crl.example/int.crl',
    'authorityInfoAccess=OCSP;URI:http://ocsp.example,caIssuers;URI:http://ca.example/root.crt',
  ]);
  await ossl('x509', '-req', '-in', 'int.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial', '-days', '1000', '-extfile', 'int.ext', '-out', 'int.crt');
  await ossl('genpkey', '-algorithm', 'ed25519', '-out', 'leaf.key');
  await ossl('req', '-new', '-key', 'leaf.key', '-subj', '/CN=leaf.example.com', '-out', 'leaf.csr');
  await ext('leaf.ext', [
    'basicConstraints=CA:FALSE', 'keyUsage=digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth,1.2.3.99',
    'subjectAltName=DNS:leaf.example.com,DNS:*.wild.example.com,IP:192.0.2.1,IP:2001:db8::1,URI:spiffe://example.org/ns/a/sa/b,URI:https://u:p@h.example:8443/p%20q?x=1#frag,email:me@example.com',
  ]);
  await ossl('x509', '-req', '-in', 'leaf.csr', '-CA', 'int.crt', '-CAkey', 'int.key', '-CAcreateserial', '-days', '300', '-extfile', 'leaf.ext', '-out', 'leaf.crt');
  await ossl('genrsa', '-out', 'rsa1.key', '2048');
  await ossl('req', '-new', '-key', 'rsa1.key', '-subj', '/CN=sha1 leaf', '-out', 'sha1.csr');
  await ossl('x509', '-req', '-in', 'sha1.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial', '-days', '30', '-sha1', '-out', 'sha1.crt');
  await ext('nc.ext', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign', 'nameConstraints=critical,permitted;DNS:.example.com,excluded;IP:10.0.0.0/255.0.0.0,excluded;email:bad.com,permitted;URI:.example.com']);
  await ossl('x509', '-req', '-in', 'int.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial', '-days', '100', '-extfile', 'nc.ext', '-out', 'nc.crt');
  // leaves under the name-constrained CA: within its constraints, and outside them in each way
  const ncLeaves: Record<string, string> = {
    'nc-ok': 'DNS:ok.example.com,DNS:*.w.example.com,URI:spiffe://id.example.com/a,email:me@good.example.com,IP:192.0.2.7',
    'nc-dns': 'DNS:bad.other.org',
    'nc-ip': 'DNS:x.example.com,IP:10.1.1.1',
    'nc-email': 'DNS:x.example.com,email:me@bad.com',
    'nc-uri': 'DNS:x.example.com,URI:spiffe://other.org/a',
  };
  for (const [name, san] of Object.entries(ncLeaves)) {
    await ext(`${name}.ext`, ['basicConstraints=CA:FALSE', `subjectAltName=${san}`]);
    await ossl('req', '-new', '-key', 'leaf.key', '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    await ossl('x509', '-req', '-in', `${name}.csr`, '-CA', 'nc.crt', '-CAkey', 'int.key', '-CAcreateserial', '-days', '30', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  }
  await ossl('req', '-new', '-key', 'int.key', '-subj', '/C=DE/CN=csr with attrs', '-addext', 'subjectAltName=DNS:a.example,IP:10.1.2.3', '-addext', 'keyUsage=critical,digitalSignature', '-out', 'attrs.csr');
  await ossl('ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', 'ec384.key');
  await ossl('pkcs8', '-topk8', '-nocrypt', '-in', 'ec384.key', '-out', 'ec384.p8');
  await ossl('genpkey', '-algorithm', 'x25519', '-out', 'x25519.key');
  await ossl('req', '-x509', '-new', '-key', 'int.key', '-subj', '/CN=pss', '-days', '10', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-sha256', '-out', 'pss.crt');
  await ossl('x509', '-req', '-in', 'sha1.csr', '-signkey', 'rsa1.key', '-days', '10', '-out', 'v1.crt');
  const names = ['root.crt', 'root.key', 'int.crt', 'int.key', 'int.csr', 'leaf.crt', 'leaf.key', 'leaf.csr', 'sha1.crt', 'nc.crt', 'attrs.csr', 'ec384.key', 'ec384.p8', 'x25519.key', 'pss.crt', 'v1.crt', 'nc-ok.crt', 'nc-dns.crt', 'nc-ip.crt', 'nc-email.crt', 'nc-uri.crt'];
  const files = new Map<string, string>();
  for (const n of names) files.set(n, await readFile(join(dir, n), 'utf8'));
  const text = (name: string): string => {
    const t = files.get(name);
    if (t === undefined) throw new Error(`no fixture ${name}`);
    return t;
  };
  return {
    text,
    der: (name) => text(name).split('\n').filter((l) => l !== '' && !l.startsWith('-----')).join(''),
  };
}
