import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';

/**
 * One of OPA's `services` (https://www.openpolicyagent.org/docs/configuration#services) as toolgate talks to
 * it: a base URL, headers, bearer credentials (a token, or a token file re-read on every request as OPA does,
 * so rotated tokens apply), client TLS and a custom CA.
 */
export interface ServiceConfig {
  name: string;
  url: string;
  headers: Record<string, string>;
  bearer?: { token?: string; tokenPath?: string; scheme: string };
  tls?: { caCert?: string; clientCert?: string; clientKey?: string; passphrase?: string; systemCa?: boolean };
  responseHeaderTimeoutSeconds?: number;
}

export interface ServiceResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface ServiceRequest {
  method: 'GET' | 'POST';
  /** Appended to the service URL (OPA's `resource`). */
  resource: string;
  headers?: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
  /** Larger answers are cut off with an error (a bundle server is not trusted to be small). */
  maxBytes?: number;
}

export class ServiceClient {
  private agent: HttpAgent | HttpsAgent | undefined;

  constructor(readonly service: ServiceConfig) {}

  /** The URL of a resource on this service, joined as OPA joins them (one slash between). */
  urlOf(resource: string): string {
    if (resource === '') return this.service.url;
    return `${this.service.url.replace(/\/+$/, '')}/${resource.replace(/^\/+/, '')}`;
  }

  async request(r: ServiceRequest): Promise<ServiceResponse> {
    const url = new URL(this.urlOf(r.resource));
    const headers: Record<string, string> = { ...this.service.headers, ...r.headers };
    const bearer = this.service.bearer;
    if (bearer) {
      const token = bearer.tokenPath ? (await readFile(bearer.tokenPath, 'utf8')).trim() : bearer.token;
      if (token) headers.authorization = `${bearer.scheme} ${token}`;
    }
    if (r.body) headers['content-length'] = String(r.body.length);
    const agent = await this.agentFor(url);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<ServiceResponse>((resolve, reject) => {
      const req = send(url, { method: r.method, headers, agent, timeout: r.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (r.maxBytes !== undefined && size > r.maxBytes) {
            req.destroy(new Error(`answer larger than ${r.maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${r.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(r.body);
    });
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  private async agentFor(url: URL): Promise<HttpAgent | HttpsAgent> {
    if (this.agent) return this.agent;
    if (url.protocol !== 'https:') {
      this.agent = new HttpAgent({ keepAlive: true, maxSockets: 4 });
      return this.agent;
    }
    const tls = this.service.tls ?? {};
    const [ca, cert, key] = await Promise.all([tls.caCert, tls.clientCert, tls.clientKey].map((p) => (p ? readFile(p) : Promise.resolve(undefined))));
    this.agent = new HttpsAgent({
      keepAlive: true,
      maxSockets: 4,
      // A custom CA replaces the system's roots unless OPA's system_ca_required asks for both.
      ...(ca ? { ca: tls.systemCa ? [...rootCertificates, ca.toString('utf8')] : ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
    });
    return this.agent;
  }
}
