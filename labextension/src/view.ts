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
  remote?: boolean; // connected with %tfserve connect: not ours to stop
  rest_api_port: number;
  grpc_port: number | null;
  alive: boolean;
  proxy_url: string;
  model_views: ModelView[];
}

/** What the detail area under the list shows: a server's log, or a model's curl command. */
export type Detail = { kind: 'log'; server: string } | { kind: 'curl'; server: string; model: string };

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
