"use strict";
// The page's data come from the script blocks above: "meta" (JSON) and "data-*" (base64 arrays).
(function () {
  const status = document.getElementById("status");
  const tooltip = document.getElementById("tooltip");
  const canvas = document.getElementById("plot");
  window.addEventListener("error", (e) => fail(e.message));

  function fail(message) {
    status.textContent = "error: " + message;
    document.title = "error: " + message;
  }

  function blob(name, Type) {
    const node = document.getElementById("data-" + name);
    if (!node) return null;
    const text = atob(node.textContent);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  const meta = JSON.parse(document.getElementById("meta").textContent);
  const n = meta.n;
  const points = blob("points", Float32Array);
  const labels = meta.labels || null;
  const codes = labels ? blob("labels", labels.kind === "categories" ? Uint8Array : Float32Array) : null;
  const images = meta.images ? blob("images", Uint8Array) : null;
  const imageOf = new Int32Array(images ? n : 0).fill(-1);
  if (images) blob("image_rows", Int32Array).forEach((row, k) => { imageOf[row] = k; });

  // ---- colours: one RGBA per point; alpha 0 hides a point (a label switched off in the legend)
  const palette = meta.palette.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  const hidden = new Set();
  const colours = new Uint8Array(4 * n);
  function paletteIndex(i) {
    if (!labels) return 0;
    if (labels.kind === "categories") return codes[i];
    const v = codes[i];
    if (!Number.isFinite(v)) return -1;
    const t = (v - labels.min) / Math.max(labels.max - labels.min, 1e-30);
    return Math.max(0, Math.min(palette.length - 1, Math.round(t * (palette.length - 1))));
  }
  function fillColours() {
    for (let i = 0; i < n; i++) {
      const p = paletteIndex(i);
      const rgb = p < 0 ? [170, 170, 170] : palette[p];
      colours.set(rgb, 4 * i);
      colours[4 * i + 3] = labels && labels.kind === "categories" && hidden.has(codes[i]) ? 0 : 255;
    }
  }

  // ---- WebGL: every point in one draw call
  const gl = canvas.getContext("webgl", { alpha: false, antialias: false, preserveDrawingBuffer: true });
  if (!gl) { fail("this browser has no WebGL"); return; }
  function shader(type, source) {
    const s = gl.createShader(type);
    gl.shaderSource(s, source);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    return s;
  }
  const program = gl.createProgram();
  gl.attachShader(program, shader(gl.VERTEX_SHADER, `
    attribute vec2 a_pos; attribute vec4 a_col;
    uniform vec2 u_center; uniform vec2 u_scale; uniform float u_size;
    varying vec4 v_col;
    void main() {
      gl_Position = vec4((a_pos - u_center) * u_scale, 0.0, 1.0);
      gl_PointSize = u_size;
      v_col = a_col;
    }`));
  gl.attachShader(program, shader(gl.FRAGMENT_SHADER, `
    precision mediump float;
    varying vec4 v_col; uniform float u_alpha;
    void main() {
      if (v_col.a < 0.5) discard;
      vec2 d = gl_PointCoord - 0.5;
      if (dot(d, d) > 0.25) discard;
      gl_FragColor = vec4(v_col.rgb, u_alpha);
    }`));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  gl.useProgram(program);
  const where = (name) => gl.getUniformLocation(program, name);
  const uniforms = { center: where("u_center"), scale: where("u_scale"), size: where("u_size"), alpha: where("u_alpha") };
  function attribute(name, data, size, type, normalised) {
    const buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    const location = gl.getAttribLocation(program, name);
    gl.enableVertexAttribArray(location);
    gl.vertexAttribPointer(location, size, type, normalised, 0, 0);
    return buffer;
  }
  // drawn in a shuffled order, so that no label is painted over the others because it comes last
  const order = new Int32Array(n).map((_, i) => i);
  for (let i = n - 1, seed = 12345; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1), t = order[i];
    order[i] = order[j]; order[j] = t;
  }
  const drawn = new Float32Array(2 * n), drawnColours = new Uint8Array(4 * n);
  order.forEach((i, k) => { drawn[2 * k] = points[2 * i]; drawn[2 * k + 1] = points[2 * i + 1]; });
  function shuffledColours() {
    order.forEach((i, k) => drawnColours.set(colours.subarray(4 * i, 4 * i + 4), 4 * k));
    return drawnColours;
  }
  attribute("a_pos", drawn, 2, gl.FLOAT, false);
  fillColours();
  const colourBuffer = attribute("a_col", shuffledColours(), 4, gl.UNSIGNED_BYTE, true);
  gl.enable(gl.BLEND);
  gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);

  // ---- the view: a centre and pixels per data unit; the start frames the robust extent
  const view = { cx: 0, cy: 0, ppu: 1 };
  const baseSize = Math.max(1.5, Math.min(6, Math.sqrt(400000 / n)));
  const alpha = Math.max(0.15, Math.min(0.9, Math.sqrt(20000 / n)));
  let startPpu = 1;
  function reset() {
    const [x0, x1, y0, y1] = meta.extent;
    view.cx = (x0 + x1) / 2;
    view.cy = (y0 + y1) / 2;
    view.ppu = 0.9 * Math.min(canvas.clientWidth / Math.max(x1 - x0, 1e-30),
                              canvas.clientHeight / Math.max(y1 - y0, 1e-30));
    startPpu = view.ppu;
    redraw();
  }
  let pending = false;
  function redraw() {
    if (!pending) { pending = true; requestAnimationFrame(draw); }
  }
  function draw() {
    pending = false;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    gl.viewport(0, 0, canvas.width, canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    const zoom = Math.max(1, Math.min(16, view.ppu / startPpu));
    gl.uniform2f(uniforms.center, view.cx, view.cy);
    gl.uniform2f(uniforms.scale, 2 * view.ppu / w, 2 * view.ppu / h);
    gl.uniform1f(uniforms.size, Math.min(14, baseSize * Math.sqrt(zoom)) * dpr);
    gl.uniform1f(uniforms.alpha, Math.min(0.9, alpha * Math.sqrt(zoom)));
    gl.drawArrays(gl.POINTS, 0, n);
  }
  function toData(clientX, clientY) {
    const r = canvas.getBoundingClientRect();
    return [view.cx + (clientX - r.left - r.width / 2) / view.ppu,
            view.cy - (clientY - r.top - r.height / 2) / view.ppu];
  }
  function toScreen(i) {
    const r = canvas.getBoundingClientRect();
    return [r.left + r.width / 2 + (points[2 * i] - view.cx) * view.ppu,
            r.top + r.height / 2 - (points[2 * i + 1] - view.cy) * view.ppu];
  }

  // ---- hover: a grid over the points' full extent finds the nearest point in a few cells
  const grid = (function () {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = points[2 * i], y = points[2 * i + 1];
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    const side = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(n / 4))));
    const sx = side / Math.max(x1 - x0, 1e-30), sy = side / Math.max(y1 - y0, 1e-30);
    const cellOf = (x, y) => Math.min(side - 1, Math.floor((x - x0) * sx)) * side
                             + Math.min(side - 1, Math.floor((y - y0) * sy));
    const start = new Int32Array(side * side + 1);
    const cells = new Int32Array(n);
    for (let i = 0; i < n; i++) { cells[i] = cellOf(points[2 * i], points[2 * i + 1]); start[cells[i] + 1]++; }
    for (let c = 0; c < side * side; c++) start[c + 1] += start[c];
    const fill = start.slice(0, side * side), order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[fill[cells[i]]++] = i;
    return { x0, y0, sx, sy, side, start, order };
  })();
  function nearest(x, y, radius) {
    const g = grid;
    const clamp = (v) => Math.max(0, Math.min(g.side - 1, v));
    const cx0 = clamp(Math.floor((x - radius - g.x0) * g.sx)), cx1 = clamp(Math.floor((x + radius - g.x0) * g.sx));
    const cy0 = clamp(Math.floor((y - radius - g.y0) * g.sy)), cy1 = clamp(Math.floor((y + radius - g.y0) * g.sy));
    let best = -1, bestD = radius * radius;
    for (let a = cx0; a <= cx1; a++) {
      for (let b = cy0; b <= cy1; b++) {
        const c = a * g.side + b;
        for (let k = g.start[c]; k < g.start[c + 1]; k++) {
          const i = g.order[k];
          if (colours[4 * i + 3] === 0) continue;
          const dx = points[2 * i] - x, dy = points[2 * i + 1] - y, d = dx * dx + dy * dy;
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }
  function labelText(i) {
    if (!labels) return "";
    if (labels.kind === "categories") return " · label " + labels.names[codes[i]];
    return " · value " + codes[i].toPrecision(4);
  }
  function showTooltip(i, clientX, clientY) {
    if (i < 0) { tooltip.style.display = "none"; return; }
    tooltip.textContent = "index " + i + labelText(i);
    if (images) {
      const k = imageOf[i];
      if (k < 0) {
        tooltip.appendChild(document.createElement("br"));
        tooltip.appendChild(document.createTextNode("(image not included: the page holds " + meta.images.count.toLocaleString() + ")"));
      } else {
        tooltip.appendChild(imageCanvas(k));
      }
    }
    tooltip.style.left = (clientX + 14) + "px";
    tooltip.style.top = (clientY + 14) + "px";
    tooltip.style.display = "block";
    tooltip.dataset.index = i;
  }
  function imageCanvas(k) {
    const { height, width } = meta.images;
    const c = document.createElement("canvas");
    c.width = width; c.height = height;
    c.style.width = Math.max(84, 3 * width) + "px";
    const context = c.getContext("2d"), pixels = context.createImageData(width, height);
    for (let p = 0; p < width * height; p++) {
      const v = images[k * width * height + p];
      pixels.data.set([v, v, v, 255], 4 * p);
    }
    context.putImageData(pixels, 0, 0);
    return c;
  }

  // ---- interaction
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY]; });
  window.addEventListener("mouseup", () => { drag = null; });
  canvas.addEventListener("mousemove", (e) => {
    if (drag) {
      view.cx -= (e.clientX - drag[0]) / view.ppu;
      view.cy += (e.clientY - drag[1]) / view.ppu;
      drag = [e.clientX, e.clientY];
      tooltip.style.display = "none";
      redraw();
      return;
    }
    const [x, y] = toData(e.clientX, e.clientY);
    showTooltip(nearest(x, y, 6 / view.ppu), e.clientX, e.clientY);
  });
  canvas.addEventListener("mouseleave", () => { tooltip.style.display = "none"; });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y] = toData(e.clientX, e.clientY);
    const factor = Math.exp(-e.deltaY * 0.0015);
    view.ppu *= factor;
    view.cx = x - (x - view.cx) / factor;
    view.cy = y - (y - view.cy) / factor;
    redraw();
  }, { passive: false });
  canvas.addEventListener("dblclick", reset);
  window.addEventListener("resize", redraw);

  // ---- legend: categories with their counts (click: show/hide), or the colour scale
  (function legend() {
    const box = document.getElementById("legend");
    if (!labels) { box.style.display = "none"; return; }
    if (labels.kind === "values") {
      const bar = document.createElement("canvas");
      bar.width = 160; bar.height = 12;
      const c = bar.getContext("2d");
      palette.forEach((rgb, k) => {
        c.fillStyle = "rgb(" + rgb.join(",") + ")";
        c.fillRect(Math.floor(k * 160 / palette.length), 0, Math.ceil(160 / palette.length), 12);
      });
      box.append(labels.min.toPrecision(3), bar, labels.max.toPrecision(3));
      return;
    }
    const counts = new Int32Array(labels.names.length);
    for (let i = 0; i < n; i++) counts[codes[i]]++;
    labels.names.forEach((name, k) => {
      const row = document.createElement("div");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = meta.palette[k];
      row.append(swatch, name + " (" + counts[k].toLocaleString() + ")");
      row.addEventListener("click", () => {
        if (hidden.has(k)) hidden.delete(k); else hidden.add(k);
        row.classList.toggle("off");
        fillColours();
        gl.bindBuffer(gl.ARRAY_BUFFER, colourBuffer);
        gl.bufferSubData(gl.ARRAY_BUFFER, 0, shuffledColours());
        redraw();
      });
      box.appendChild(row);
    });
  })();

  reset();
  status.textContent = n.toLocaleString() + " points";
  // a timer, not an animation frame: headless browsers do not always schedule frames
  if (location.hash === "#selftest") setTimeout(selftest, 0);

  // ---- #selftest: the browser test's check that points are drawn and hover finds them
  function selftest() {
    draw();
    const pixels = new Uint8Array(4 * canvas.width * canvas.height);
    gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
    let painted = 0;
    for (let p = 0; p < pixels.length; p += 4) if (pixels[p] < 250 || pixels[p + 1] < 250 || pixels[p + 2] < 250) painted++;
    const target = Math.floor(n / 2);
    // mouse events carry whole pixels: the hovered point must be at least as near as the target
    const [sx, sy] = toScreen(target).map(Math.round);
    canvas.dispatchEvent(new MouseEvent("mousemove", { clientX: sx, clientY: sy, bubbles: true }));
    const found = Number(tooltip.dataset.index);
    const distance = (i) => { const [x, y] = toScreen(i); return Math.hypot(x - sx, y - sy); };
    const near = distance(found) <= distance(target) + 1e-6;
    const hasImage = !images || imageOf[found] < 0 || tooltip.querySelector("canvas") !== null;
    const ok = painted > 0 && tooltip.style.display === "block" && near && hasImage;
    document.title = (ok ? "selftest ok" : "selftest failed") + ": " + painted + " pixels drawn, hover index " + found;
  }
})();
