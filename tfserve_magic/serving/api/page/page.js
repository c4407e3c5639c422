// The model server's own page: models, versions, labels, signatures, and a predict form.
// Only TF Serving's /v1 API is used, with URLs relative to the page, so the page works both
// at the server's address and under a proxy prefix such as Jupyter's /tfserve/<server>/.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("tfserve-data").textContent);
  const $ = (id) => document.getElementById(id);
  const metadata = {};

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  function modelPath(name) {
    return "v1/models/" + encodeURIComponent(name);
  }

  function headers() {
    // Under Jupyter's proxy a cookie-authenticated POST needs Jupyter's XSRF token.
    const found = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    const h = { "Content-Type": "application/json" };
    if (found) h["X-XSRFToken"] = decodeURIComponent(found[1]);
    return h;
  }

  async function getJson(path, init) {
    const response = await fetch(path, init);
    const text = await response.text();
    let body;
    try { body = JSON.parse(text); } catch (e) { body = { error: text || response.statusText }; }
    return { ok: response.ok, status: response.status, body: body };
  }

  // numpy's names, as %tfserve signatures and the dashboard print them (DT_FLOAT -> float32).
  const NUMPY_NAMES = { float: "float32", double: "float64", half: "float16" };

  function dtype(info) {
    const name = (info.dtype || "").replace(/^DT_/, "").toLowerCase();
    return NUMPY_NAMES[name] || name;
  }

  function shape(info) {
    const s = info.tensor_shape || {};
    if (s.unknown_rank) return "(unknown rank)";
    return "[" + (s.dim || []).map((d) => (Number(d.size) === -1 ? "None" : d.size)).join(", ") + "]";
  }

  function zeros(info) {
    const kind = dtype(info);
    const leaf = kind === "string" ? "text" : kind === "bool" ? false : 0;
    const s = info.tensor_shape || {};
    if (s.unknown_rank) return leaf;
    let value = leaf;
    (s.dim || []).slice(1).reverse().forEach((d) => {
      const n = Number(d.size) > 0 ? Number(d.size) : 1;
      value = Array.from({ length: n }, () => value);
    });
    return value;
  }

  function example(signature) {
    const inputs = Object.entries(signature.inputs || {});
    if (inputs.length === 1) return { instances: [zeros(inputs[0][1])] };
    const row = {};
    inputs.forEach(([name, info]) => { row[name] = zeros(info); });
    return { instances: [row] };
  }

  function signaturesOf(model) {
    const m = metadata[model];
    const all = (m && m.metadata && m.metadata.signature_def.signature_def) || {};
    return Object.fromEntries(Object.entries(all).filter(([name]) => !name.startsWith("__")));
  }

  function renderModel(model) {
    const byVersion = {};
    Object.entries(model.labels || {}).forEach(([label, v]) => {
      (byVersion[v] = byVersion[v] || []).push(label);
    });
    const rows = model.versions.map((v) => el("tr", { "data-version": String(v.version) }, [
      el("td", {}, [String(v.version)]),
      el("td", { class: "state-" + v.state }, [v.state]),
      el("td", {}, [(byVersion[v.version] || []).sort().join(", ")]),
      el("td", { class: "error" }, [v.error || ""]),
    ]));
    const versions = rows.length
      ? el("table", { class: "versions" }, [
          el("tr", {}, ["Version", "State", "Labels", "Error"].map((h) => el("th", {}, [h]))),
          ...rows])
      : el("p", {}, ["No versions yet: add a numeric version folder holding a saved_model.pb."]);
    const box = el("section", { class: "model", "data-model": model.name }, [
      el("h2", {}, [model.name + " ", el("span", { class: "policy" }, [model.policy || ""])]),
      versions,
      el("div", { class: "signatures" }, []),
    ]);
    return box;
  }

  function renderSignatures(model) {
    const box = document.querySelector('.model[data-model="' + CSS.escape(model) + '"] .signatures');
    const sigs = signaturesOf(model);
    const rows = [];
    Object.keys(sigs).sort().forEach((name) => {
      ["inputs", "outputs"].forEach((kind) => {
        Object.entries(sigs[name][kind] || {}).sort().forEach(([tensor, info]) => {
          rows.push(el("tr", {}, [
            el("td", {}, [name]), el("td", {}, [kind === "inputs" ? "in" : "out"]),
            el("td", {}, [el("code", {}, [tensor + ": " + dtype(info) + " " + shape(info)])]),
          ]));
        });
      });
    });
    if (rows.length) {
      box.replaceChildren(el("table", { class: "signature-table" }, [
        el("tr", {}, ["Signature", "", "Tensor"].map((h) => el("th", {}, [h]))), ...rows]));
    }
  }

  function fillTargets() {
    const model = data.models.find((m) => m.name === $("model").value);
    const options = [el("option", { value: "" }, ["latest"])];
    (model ? model.versions : []).filter((v) => v.state === "AVAILABLE").forEach((v) => {
      options.push(el("option", { value: "versions/" + v.version }, ["version " + v.version]));
    });
    Object.keys((model && model.labels) || {}).sort().forEach((label) => {
      options.push(el("option", { value: "labels/" + encodeURIComponent(label) },
        ["label " + label]));
    });
    $("target").replaceChildren(...options);
    const sigs = signaturesOf($("model").value);
    const names = Object.keys(sigs).sort((a, b) =>
      (b === "serving_default") - (a === "serving_default") || a.localeCompare(b));
    $("signature").replaceChildren(...names.map((n) => el("option", { value: n }, [n])));
    fillBody();
  }

  // The body a person typed is theirs: a change of model, version or signature never replaces
  // it (a new signature only updates its "signature_name"). Until they type, an example fits.
  let typed = false;

  function withSignature(body) {
    const name = $("signature").value;
    if (name && name !== "serving_default") body.signature_name = name;
    else delete body.signature_name;
    return body;
  }

  function fillBody() {
    if (typed) {
      let body;
      try { body = JSON.parse($("body").value); } catch (e) { return; }  // not JSON: untouched
      if (body && typeof body === "object" && !Array.isArray(body)) {
        const before = JSON.stringify(body);
        if (JSON.stringify(withSignature(body)) !== before) $("body").value = pretty(body);
      }
      return;
    }
    const sig = signaturesOf($("model").value)[$("signature").value];
    $("body").value = JSON.stringify(withSignature(sig ? example(sig) : { instances: [] }));
  }

  // JSON laid out for reading: objects one key a line, arrays of numbers or text on one line.
  function pretty(value, indent) {
    indent = indent || "";
    const inner = indent + "  ";
    if (Array.isArray(value)) {
      if (value.every((v) => v === null || typeof v !== "object")) {
        return "[" + value.map((v) => JSON.stringify(v)).join(", ") + "]";
      }
      return "[\n" + value.map((v) => inner + pretty(v, inner)).join(",\n") + "\n" + indent + "]";
    }
    if (value && typeof value === "object") {
      const entries = Object.entries(value);
      if (!entries.length) return "{}";
      return "{\n" + entries.map(([k, v]) => inner + JSON.stringify(k) + ": " + pretty(v, inner))
        .join(",\n") + "\n" + indent + "}";
    }
    return JSON.stringify(value);
  }

  async function predict(event) {
    event.preventDefault();
    const target = $("target").value;
    const path = modelPath($("model").value) + (target ? "/" + target : "") + ":predict";
    const started = performance.now();
    $("answer").textContent = "…";
    let result;
    try {
      result = await getJson(path, { method: "POST", headers: headers(), body: $("body").value });
    } catch (e) {
      result = { ok: false, status: 0, body: { error: String(e) } };
    }
    $("took").textContent = "HTTP " + result.status + " in " +
      Math.round(performance.now() - started) + " ms";
    $("answer").className = result.ok ? "ok" : "failed";
    $("answer").textContent = result.ok ? pretty(result.body)
      : (result.body.error || pretty(result.body));
  }

  async function main() {
    $("base").textContent = new URL(".", document.baseURI).href;
    $("models").replaceChildren(...(data.models.length ? data.models.map(renderModel)
      : [el("p", {}, ["This server has no models configured."])]));
    $("model").replaceChildren(...data.models.map((m) => el("option", { value: m.name }, [m.name])));
    await Promise.all(data.models.map(async (m) => {
      const answer = await getJson(modelPath(m.name) + "/metadata");
      if (answer.ok) {
        metadata[m.name] = answer.body;
        renderSignatures(m.name);
      }
    }));
    fillTargets();
    $("model").addEventListener("change", fillTargets);
    $("signature").addEventListener("change", fillBody);
    $("body").addEventListener("input", () => { typed = true; });
    $("predict-form").addEventListener("submit", predict);
    document.body.setAttribute("data-ready", "true");
  }

  main();
})();
