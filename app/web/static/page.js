const SVG_NS = document.getElementById("rate-chart").namespaceURI;
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let lowest = new Map();
function setText(id, text) { document.getElementById(id).textContent = text; }
function row(cells) {
  const tr = document.createElement("tr");
  for (const [text, numeric] of cells) {
    const td = document.createElement("td");
    td.textContent = String(text);
    if (numeric) td.className = "n";
    tr.appendChild(td);
  }
  return tr;
}
function replaceRows(id, rows) {
  const body = document.createElement("tbody");
  body.id = id;
  rows.forEach((tr) => body.appendChild(tr));
  document.getElementById(id).replaceWith(body);
}
function showInventory(page) {
  replaceRows("inventory-rows", page.items.map((item) => {
    const where = item.warehouses.map((w) => w.warehouse_id + ": " + w.on_hand).join(", ");
    const tr = row([[item.product_id, true], [item.sku, false], [item.on_hand, true], [item.reserved, true],
                    [item.available, true], [where, false]]);
    tr.dataset.productId = String(item.product_id);
    return tr;
  }));
  setText("inventory-shown", String(page.items.length));
  setText("inventory-total", String(page.total));
}
function showStats(stats) {
  const topics = Object.entries(stats.topics || {});
  replaceRows("rate-rows", topics.map(([topic, t]) => row([[topic, false], [t.rate_10s.toFixed(1), true],
                                                               [t.emitted, true]])));
  setText("rate-total", Number(stats.rate_10s || 0).toFixed(1));
  setText("dead-letters", String((stats.agents || {})["dead letters"] || 0));
  setText("backlog", String((stats.ledger || {}).backlog || 0));
  setText("shards", (stats.shards || []).join(", ") || "none");
  if (stats.group) {
    setText("group-rate", Number(stats.group.rate_10s || 0).toFixed(1));
    setText("group-target", Number(stats.group.target_eps || 0).toFixed(1));
    setText("group-workers", String(stats.group.workers.length));
  }
}
function svg(parent, name, attributes) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  parent.appendChild(node);
  return node;
}
function roundUp(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((top) => top >= value);
}
function label(value) { return value >= 1000 ? (value / 1000) + "k" : String(Math.round(value * 100) / 100); }
function drawChart(id, times, windowMs, lines) {
  const chart = document.getElementById(id);
  const box = chart.viewBox.baseVal;
  const left = 56, right = 14, top = 10, bottom = 24;
  const width = box.width - left - right, height = box.height - top - bottom;
  const end = times.length ? times[times.length - 1] : 0;
  const highest = roundUp(lines.reduce((most, line) => line.values.reduce((m, v) => Math.max(m, v), most), 0));
  const x = (t) => (left + width * (1 - (end - t) / windowMs)).toFixed(1);
  const y = (v) => (top + height * (1 - v / highest)).toFixed(1);
  chart.replaceChildren();
  for (let i = 0; i <= 4; i++) {
    const value = highest * i / 4;
    svg(chart, "line", {x1: left, x2: left + width, y1: y(value), y2: y(value), stroke: i ? "#eeeeee" : "#999999"});
    svg(chart, "text", {x: left - 6, y: Number(y(value)) + 4, "text-anchor": "end"}).textContent = label(value);
  }
  const minutes = windowMs / 60000;
  for (let m = 0; m <= minutes; m += 2) {
    const at = left + width * (1 - m / minutes);
    svg(chart, "line", {x1: at, x2: at, y1: top, y2: top + height, stroke: "#f2f2f2"});
    const text = svg(chart, "text", {x: at, y: top + height + 16, "text-anchor": m ? "middle" : "end"});
    text.textContent = m ? "-" + m + " min" : "now";
  }
  for (const line of lines) {
    const drawn = line.values.map((v, i) => x(times[i]) + "," + y(v)).join(" ");
    svg(chart, "polyline", {points: drawn, fill: "none", stroke: line.colour, "stroke-width": line.width || 2,
                            "stroke-dasharray": line.dashed ? "7 4" : "none", "stroke-linejoin": "round",
                            "data-series": line.name});
  }
}
function drawLegend(id, lines, unit) {
  const legend = document.getElementById(id);
  legend.replaceChildren(...lines.map((line) => {
    const item = document.createElement("li");
    item.dataset.series = line.name;
    const swatch = document.createElementNS(SVG_NS, "svg");
    swatch.setAttribute("width", "22");
    swatch.setAttribute("height", "10");
    svg(swatch, "line", {x1: 0, x2: 22, y1: 5, y2: 5, stroke: line.colour, "stroke-width": 3,
                         "stroke-dasharray": line.dashed ? "5 3" : "none"});
    const now = document.createElement("span");
    now.className = "n";
    now.textContent = " " + (line.values.length ? label(line.values[line.values.length - 1]) : "-") + unit;
    item.append(swatch, line.name, now);
    return item;
  }));
}
function showHistory(history) {
  const lines = history.series.map((s, i) => ({name: s.name, values: history.rates[s.name],
                                               colour: COLOURS[i % COLOURS.length]}));
  lines.push({name: "generated, all topics", values: history.generated_eps, colour: "#888888", width: 3});
  lines.push({name: "target (generator)", values: history.target_eps, colour: "#000000", dashed: true});
  const windowMs = history.window_s * 1000;
  drawChart("rate-chart", history.times, windowMs, lines);
  drawLegend("rate-legend", lines, "/s");
  const backlog = [{name: "orders waiting for stock", values: history.backlog, colour: "#d62728"}];
  drawChart("backlog-chart", history.times, windowMs, backlog);
  drawLegend("backlog-legend", backlog, "");
  const missing = history.not_counted;
  setText("not-counted", missing.length ? "Not counted by the agents here, so not drawn: " + missing.join(", ") : "");
  const reasons = Object.entries(history.dead_letters.by_reason).sort((a, b) => b[1] - a[1]);
  if (!reasons.length) reasons.push(["all reasons (not counted by reason)", history.dead_letters.total]);
  replaceRows("dead-letter-rows", reasons.map(([reason, count]) => row([[reason, false], [count, true]])));
}
function showLowest(body) {
  lowest = new Map(body.items.map((item) => [item.product_id, item.available]));
  replaceRows("low-stock-rows", body.items.map((item) => {
    const out = item.available <= 0;
    const tr = row([[out ? "out of stock" : "low", false], [item.product_id, true], [item.sku, false],
                    [item.available, true], [item.on_hand, true], [item.reserved, true]]);
    tr.className = out ? "low out" : "low";
    tr.firstChild.className = "mark";
    tr.dataset.productId = String(item.product_id);
    return tr;
  }));
  setText("low-stock-of", String(body.products));
}
function markLowest() {
  for (const tr of document.querySelectorAll("#inventory-rows tr")) {
    const available = lowest.get(Number(tr.dataset.productId));
    tr.classList.toggle("low", available !== undefined);
    tr.classList.toggle("out", available !== undefined && available <= 0);
  }
}
async function getJson(path) {
  const response = await fetch(path, {cache: "no-store"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || String(response.status));
  return body;
}
async function refresh() {
  const problems = [];
  const sources = [[INVENTORY_PATH, showInventory], ["/stats/", showStats], [HISTORY_PATH, showHistory],
                   [LOW_STOCK_PATH, showLowest]];
  for (const [path, show] of sources) {
    try { show(await getJson(path)); } catch (e) { problems.push(path + ": " + e.message); }
  }
  markLowest();
  setText("notice", problems.join("; "));
  setText("updated", new Date().toISOString());
  setTimeout(refresh, REFRESH_MS);
}
refresh();
