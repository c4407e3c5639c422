/**
 * "Served models" side panel: lists the model servers the user started (from any kernel), with
 * their models, versions, states, labels and load errors, the proxied URL, and actions (stop,
 * log, copy a curl command). Data and rules come from the tfserve_magic server extension.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { listIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { absoluteUrl, ServerInfo, versionRows } from './view';

const REFRESH_MS = 2000;

async function api(path: string, init: RequestInit = {}): Promise<any> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'tfserve', 'api', path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  const body = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw new Error(body.error ?? body.message ?? `HTTP ${response.status}`);
  }
  return body;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K, className = '', text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

class ServedModelsPanel extends Widget {
  private timer = 0;
  private readonly list = el('div', 'tfserve-servers');
  private readonly error = el('div', 'tfserve-error');
  private readonly detail = el('pre', 'tfserve-log');

  constructor() {
    super();
    this.id = 'tfserve-magic-panel';
    this.title.icon = listIcon;
    this.title.caption = 'Served models (tfserve_magic)';
    this.addClass('tfserve-panel');
    this.detail.hidden = true;
    this.node.append(el('h3', '', 'Served models'), this.error, this.list, this.detail);
  }

  protected onAfterAttach(): void {
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    try {
      const { servers } = await api('servers');
      this.error.textContent = '';
      this.render(servers as ServerInfo[]);
    } catch (reason) {
      this.error.textContent = `Could not list servers: ${(reason as Error).message}`;
    }
  }

  private render(servers: ServerInfo[]): void {
    this.list.replaceChildren();
    if (!servers.length) {
      this.list.append(el('p', 'tfserve-empty', 'No servers. Start one with %tfserve start MODEL_DIR.'));
      return;
    }
    for (const server of servers) {
      const box = el('div', 'tfserve-server');
      box.dataset.server = server.name;
      const head = el('div', 'tfserve-server-head');
      head.append(
        el('b', 'tfserve-server-name', server.name),
        el('span', server.alive ? 'tfserve-alive' : 'tfserve-dead', server.alive ? 'alive' : 'not answering'),
        el('span', '', `pid ${server.pid}, port ${server.rest_api_port}`),
        this.button('Stop', 'tfserve-stop', () => this.act(`servers/${server.name}/stop`, 'POST')),
        this.button('Log', 'tfserve-log-button', () => this.showLog(server.name))
      );
      const url = el('div', 'tfserve-url', absoluteUrl(window.location.origin, server.proxy_url));
      box.append(head, url);
      for (const model of server.status?.models ?? []) {
        const modelHead = el('div', 'tfserve-model', model.name);
        modelHead.dataset.model = model.name;
        const curl = server.curl[model.name];
        if (curl) {
          modelHead.append(' ', this.button('Copy curl', 'tfserve-copy-curl', () => this.copy(curl)));
        }
        const table = el('table', 'tfserve-versions');
        for (const row of versionRows(model)) {
          const tr = el('tr', 'tfserve-version');
          tr.dataset.version = String(row.version);
          tr.append(el('td', '', `v${row.version}`), el('td', `tfserve-state-${row.state}`, row.state),
                    el('td', '', row.labels), el('td', 'tfserve-load-error', row.error));
          table.append(tr);
        }
        box.append(modelHead, table);
      }
      this.list.append(box);
    }
  }

  private button(label: string, className: string, onClick: () => void): HTMLButtonElement {
    const button = el('button', `jp-Button ${className}`, label);
    button.addEventListener('click', onClick);
    return button;
  }

  private async act(path: string, method: string): Promise<void> {
    try {
      await api(path, { method });
    } catch (reason) {
      this.error.textContent = (reason as Error).message;
    }
    await this.refresh();
  }

  private async showLog(name: string): Promise<void> {
    try {
      const { lines } = await api(`servers/${name}/log?n=200`);
      this.detail.textContent = (lines as string[]).join('\n');
      this.detail.hidden = false;
    } catch (reason) {
      this.error.textContent = (reason as Error).message;
    }
  }

  private async copy(text: string): Promise<void> {
    this.detail.textContent = text;
    this.detail.className = 'tfserve-log tfserve-curl';
    this.detail.hidden = false;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard (plain http or a headless browser): the command is shown to copy by hand.
    }
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'tfserve-magic:panel',
  description: 'Lists the TensorFlow models served by tfserve_magic.',
  autoStart: true,
  requires: [ILabShell],
  activate: (_app: JupyterFrontEnd, shell: ILabShell) => {
    shell.add(new ServedModelsPanel(), 'left', { rank: 900 });
  }
};

export default plugin;
