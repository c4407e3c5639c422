/**
 * "Served models" side panel: lists the model servers the user started (from any kernel), with
 * their models, versions, states, labels and load errors, the proxied URL, and actions (stop,
 * follow the log, copy a curl command). Data and rules come from the tfserve_magic server
 * extension (tfserve/api/servers); this file only renders them.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import {
  absoluteUrl, Detail, followedDetail, ModelView, ServerInfo, serverFacts, stopQuestion, urlParts
} from './view';

const REFRESH_MS = 2000;
const LOG_LINES = 200;

/** Two stacked servers, themed like JupyterLab's own sidebar icons. */
const servedModelsIcon = new LabIcon({
  name: 'tfserve-magic:served-models',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M4 2.5h16a1.5 1.5 0 0 1 1.5 1.5v5a1.5 1.5 0 0 1-1.5 1.5H4A1.5 1.5 0 0 1 2.5 9V4A1.5 ' +
    '1.5 0 0 1 4 2.5zm2.5 2.75a1.25 1.25 0 1 0 0 2.5 1.25 1.25 0 0 0 0-2.5zM11 5.5v2h7.5v-2z"/>' +
    '<path d="M4 13.5h16a1.5 1.5 0 0 1 1.5 1.5v5a1.5 1.5 0 0 1-1.5 1.5H4A1.5 1.5 0 0 1 2.5 20v-5a1.5 ' +
    '1.5 0 0 1 1.5-1.5zm2.5 2.75a1.25 1.25 0 1 0 0 2.5 1.25 1.25 0 0 0 0-2.5zM11 16.5v2h7.5v-2z"/>' +
    '</g></svg>'
});

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
  private servers: ServerInfo[] = [];
  private detail: Detail | null = null;
  private readonly list = el('div', 'tfserve-servers');
  private readonly error = el('div', 'tfserve-error');
  private listFailed = false; // the error shown is the listing's own (cleared when it works again)
  private readonly detailBox = el('div', 'tfserve-detail');
  private readonly detailTitle = el('div', 'tfserve-detail-title');
  private readonly detailNote = el('div', 'tfserve-detail-note');
  private readonly detailText = el('pre', 'tfserve-detail-text');

  constructor() {
    super();
    this.id = 'tfserve-magic-panel';
    this.title.icon = servedModelsIcon;
    this.title.caption = 'Served models (tfserve_magic)';
    this.addClass('tfserve-panel');
    const close = this.button('Close', 'tfserve-detail-close', () => this.showDetail(null));
    const head = el('div', 'tfserve-detail-head');
    head.append(this.detailTitle, close);
    this.detailBox.append(head, this.detailNote, this.detailText);
    this.detailBox.hidden = true;
    this.node.append(el('h3', '', 'Served models'), this.error, this.list, this.detailBox);
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
      if (this.listFailed) this.error.textContent = ''; // an action's refusal stays until the next action
      this.listFailed = false;
      this.servers = servers as ServerInfo[];
    } catch (reason) {
      this.error.textContent = `Could not list servers: ${(reason as Error).message}`;
      this.listFailed = true;
      return;
    }
    this.render();
    await this.showDetail(followedDetail(this.detail, this.servers));
  }

  private render(): void {
    this.list.replaceChildren();
    if (!this.servers.length) {
      this.list.append(el('p', 'tfserve-empty', 'No servers. Start one with %tfserve start MODEL_DIR.'));
      return;
    }
    for (const server of this.servers) {
      const box = el('div', 'tfserve-server');
      box.dataset.server = server.name;
      const head = el('div', 'tfserve-server-head');
      const name = el('span', 'tfserve-server-name', server.name);
      name.title = server.name;
      head.append(
        el('span', server.alive ? 'tfserve-alive' : 'tfserve-dead', server.alive ? 'alive' : 'not answering'),
        this.button('Log', 'tfserve-log-button', () => this.showDetail({ kind: 'log', server: server.name })),
        server.remote
          ? this.button('Disconnect', 'tfserve-disconnect',
                        () => this.act(`servers/${encodeURIComponent(server.name)}/disconnect`, 'POST'))
          : this.button('Stop', 'tfserve-stop', () => void this.stop(server))
      );
      // Each fact stays on one line; the line may wrap between facts.
      const facts = el('div', 'tfserve-facts');
      serverFacts(server).forEach((item, i) => facts.append(...(i ? [' · '] : []), el('span', '', item)));
      box.append(name, head, facts, this.urlLink(absoluteUrl(window.location.origin, server.proxy_url)));
      for (const model of server.model_views) {
        box.append(...this.modelView(server, model));
      }
      this.list.append(box);
    }
  }

  private urlLink(url: string): HTMLAnchorElement {
    const link = el('a', 'tfserve-url');
    link.href = url;
    link.target = '_blank';
    link.rel = 'noopener';
    for (const part of urlParts(url)) {
      link.append(part, el('wbr'));
    }
    return link;
  }

  private modelView(server: ServerInfo, model: ModelView): HTMLElement[] {
    const head = el('div', 'tfserve-model');
    head.dataset.model = model.name;
    head.append(el('span', 'tfserve-model-name', model.name));
    if (model.curl) {
      head.append(this.button('Copy curl', 'tfserve-copy-curl',
                              () => this.copy({ kind: 'curl', server: server.name, model: model.name })));
    }
    const table = el('table', 'tfserve-versions');
    for (const row of model.versions) {
      const tr = el('tr', 'tfserve-version');
      tr.dataset.version = String(row.version);
      tr.append(el('td', 'tfserve-version-number', `v${row.version}`),
                el('td', `tfserve-state tfserve-state-${row.state}`, row.state),
                el('td', 'tfserve-labels', row.labels));
      table.append(tr);
      if (row.error) {
        const errorRow = el('tr', 'tfserve-version-error');
        const cell = el('td', 'tfserve-load-error', row.error);
        cell.colSpan = 3;
        errorRow.append(cell);
        table.append(errorRow);
      }
    }
    return [head, table];
  }

  private button(label: string, className: string, onClick: () => void): HTMLButtonElement {
    const button = el('button', `jp-Button tfserve-button ${className}`, label);
    button.addEventListener('click', onClick);
    return button;
  }

  /** Stop asks first, naming whose server it is; only a confirmed stop is sent (forced). */
  private async stop(server: ServerInfo): Promise<void> {
    const answer = await showDialog({
      title: `Stop ${server.name}?`,
      body: stopQuestion(server),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Stop' })]
    });
    if (answer.button.accept) {
      await this.act(`servers/${encodeURIComponent(server.name)}/stop?force=1`, 'POST');
    }
  }

  private async act(path: string, method: string): Promise<void> {
    this.error.textContent = '';
    try {
      await api(path, { method });
    } catch (reason) {
      this.error.textContent = (reason as Error).message;
      this.listFailed = false;
    }
    await this.refresh();
  }

  /** Show (or, with null, clear) the detail area; a log is fetched again on every refresh. */
  private async showDetail(detail: Detail | null): Promise<void> {
    this.detail = detail;
    if (detail === null) {
      this.detailBox.hidden = true;
      this.detailBox.removeAttribute('data-server');
      this.detailTitle.textContent = this.detailNote.textContent = this.detailText.textContent = '';
      return;
    }
    this.detailBox.dataset.server = detail.server;
    this.detailBox.dataset.kind = detail.kind;
    this.detailBox.hidden = false;
    if (detail.kind === 'curl') {
      const model = this.curlOf(detail);
      this.detailTitle.textContent = `curl for ${detail.model}`;
      this.detailText.textContent = model ?? '';
      return;
    }
    this.detailTitle.textContent = `Log of ${detail.server}`;
    this.detailNote.textContent = '';
    try {
      const { lines, note } = await api(`servers/${encodeURIComponent(detail.server)}/log?n=${LOG_LINES}`);
      if (this.detail !== detail) return; // another choice was made meanwhile
      this.detailNote.textContent = note ?? '';
      const atEnd = this.detailText.scrollTop + this.detailText.clientHeight >= this.detailText.scrollHeight - 4;
      this.detailText.textContent = (lines as string[]).join('\n');
      if (atEnd) this.detailText.scrollTop = this.detailText.scrollHeight;
    } catch (reason) {
      if (this.detail === detail) this.showDetail(null);
      this.error.textContent = (reason as Error).message;
    }
  }

  private curlOf(detail: Detail & { kind: 'curl' }): string | null {
    const server = this.servers.find(s => s.name === detail.server);
    return server?.model_views.find(m => m.name === detail.model)?.curl?.shown ?? null;
  }

  private async copy(detail: Detail & { kind: 'curl' }): Promise<void> {
    const server = this.servers.find(s => s.name === detail.server);
    const command = server?.model_views.find(m => m.name === detail.model)?.curl?.command;
    if (!command) return;
    await this.showDetail(detail);
    try {
      await navigator.clipboard.writeText(command);
      this.detailNote.textContent = 'Copied to the clipboard, with your Jupyter token. Shown here with $JUPYTER_TOKEN in its place.';
    } catch {
      this.detailNote.textContent = 'The clipboard is not available here: copy the command below and set JUPYTER_TOKEN to your Jupyter token.';
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
