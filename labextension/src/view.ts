/**
 * Shapes of the server extension's `tfserve/api/servers` answer and the few pure helpers the
 * panel uses to lay it out. Every rule (states, labels by version, curl commands) lives in
 * Python (tfserve_magic/server_extension/panel.py); these only arrange what the API says.
 */

export interface VersionView {
  version: number;
  state: string; // TF Serving's: a version that failed to load is END, with its error
  labels: string; // "canary, stable"
  error: string;
}

export interface CurlView {
  command: string; // with the token: for the clipboard only
  shown: string; // with $JUPYTER_TOKEN in its place: for the screen
}

export interface ModelView {
  name: string;
  versions: VersionView[];
  curl: CurlView | null;
}

export interface ServerInfo {
  name: string;
  pid: number;
  remote?: boolean; // connected with %tfserve connect: not ours to stop, only to disconnect
  owner?: string; // whose it is: the notebook that started (or connected) it, or "detached"
  rest_api_port: number;
  grpc_port: number | null;
  alive: boolean;
  proxy_url: string;
  model_views: ModelView[];
}

/** What the detail area under the list shows: a server's log, or a model's curl command. */
export type Detail = { kind: 'log'; server: string } | { kind: 'curl'; server: string; model: string };

/** The facts under a server's name, each kept on one line. */
export function serverFacts(server: ServerInfo): string[] {
  const facts = [server.remote ? 'remote' : `pid ${server.pid}`, `port ${server.rest_api_port}`];
  if (server.grpc_port) facts.push(`gRPC ${server.grpc_port}`);
  if (server.owner) facts.push(server.owner === 'detached' ? 'detached' : `from ${server.owner}`);
  return facts;
}

/** What the panel asks before it stops a server: who loses it. */
export function stopQuestion(server: ServerInfo): string {
  if (server.owner && server.owner !== 'detached') {
    return `${server.name} belongs to ${server.owner}: that notebook loses its server, and ` +
      'requests to it fail until it starts one again.';
  }
  return `${server.name} stops serving at once; requests to it fail until it is started again.`;
}

/** The absolute proxy URL a user can copy. */
export function absoluteUrl(origin: string, proxyUrl: string): string {
  return origin.replace(/\/$/, '') + proxyUrl;
}

/** A URL cut after each "/", the only places it may wrap (never inside a host or a name). */
export function urlParts(url: string): string[] {
  return url.match(/[^/]*\/+|[^/]+$/g) ?? [url];
}

/** The detail still worth showing after a refresh: none once its server (or model) is gone. */
export function followedDetail(detail: Detail | null, servers: ServerInfo[]): Detail | null {
  if (detail === null) return null;
  const server = servers.find(s => s.name === detail.server);
  if (!server) return null;
  if (detail.kind === 'curl' && !server.model_views.some(m => m.name === detail.model && m.curl)) {
    return null;
  }
  return detail;
}
