// Settings: environments, their (masked) keys, and the three OTel SDK variables to send data here.
import { h, clear, copyButton, setChildren } from "./dom.js";
import { api, session, storedKey } from "./api.js";

function envBlock(endpoint, key, service) {
  return [`export OTEL_EXPORTER_OTLP_ENDPOINT=${endpoint}`, `export OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team=${key}`,
    `export OTEL_SERVICE_NAME=${service}`].join("\n");
}

export async function render(main) {
  const doc = await api("/ui/api/settings");
  setChildren(main, h("h1", null, "Settings"),
    h("p", { class: "muted" }, doc.auth === "none"
      ? "This server listens on loopback only, so the UI needs no key and shows every environment."
      : "This server listens beyond this machine: the UI shows the environment of the key you signed in with."));
  for (const env of doc.environments) {
    const own = doc.auth === "key" && env.name === session.env ? storedKey() : null;
    const keyText = own || (env.keys[0] ? `<your key, starting ${env.keys[0].hint}>` : "<create a key>");
    const service = env.datasets[0] || "backend-flask";
    const pre = h("pre", { class: "env" }, envBlock(doc.endpoint, keyText, service));
    const panel = h("div", { class: "panel", "data-env": env.name }, h("h2", null, env.name),
      env.keys.length ? h("table", { class: "grid keys" },
        h("thead", null, h("tr", null, h("th", null, "Key"), h("th", null, "Access"), h("th", null, "Created"))),
        h("tbody", null, env.keys.map((k) => h("tr", null, h("td", { class: "mono" }, k.masked), h("td", null, k.can_read ? "send + query" : "send only"),
          h("td", null, new Date(k.created_at).toLocaleString())))))
        : h("p", { class: "muted" }, "No keys."),
      h("h3", null, "Send OpenTelemetry data to this environment"), pre, copyButton(() => pre.textContent, "copy"));
    if (doc.auth === "none") {
      const create = h("button", { type: "button", class: "create-key" }, "Create a new key");
      create.addEventListener("click", async () => {
        const made = await api("/ui/api/keys", { method: "POST", body: { environment: env.name } });
        pre.textContent = envBlock(doc.endpoint, made.key, service);
        create.replaceWith(h("p", { class: "muted" }, "New key created: it is shown only now (Apiary keeps a hash)."));
      });
      panel.append(" ", create);
    }
    main.append(panel);
  }
}
