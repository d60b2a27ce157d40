// DOM helpers. Data only ever reaches the page as text nodes or attribute values, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { for (const c of child) append(el, c); return; }
  el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

/** h("a", {href: "/x", class: "y"}, "text", child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) { el.replaceChildren(); return el; }

/** Replace el's children; like h(), skips null/false children (Element.append would print "null"). */
export function setChildren(el, ...children) { el.replaceChildren(); append(el, children); return el; }

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h("textarea", { style: { position: "fixed", left: "-9999px" } });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  }
}

export function copyButton(getText, label = "copy") {
  const b = h("button", { class: "small copy", title: "Copy to the clipboard", type: "button" }, label);
  b.addEventListener("click", async (ev) => {
    ev.stopPropagation();
    const ok = await copyText(typeof getText === "function" ? getText() : String(getText));
    b.textContent = ok ? "copied" : "failed";
    setTimeout(() => { b.textContent = label; }, 1200);
  });
  return b;
}
