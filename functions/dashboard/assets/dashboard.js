// The run page's script: draws the loss and learning-rate charts (uPlot, served from the package)
// from the page's #series data block and, while the run trains, asks every few seconds whether a
// chunk has committed and, when one has, swaps in the re-rendered page. The tables work without it.
'use strict';
(() => {
  const POLL_MS = 5000;
  const COLOURS = { loss: '#1f77b4', heldOut: '#d62728', lr: '#2ca02c' };
  // steps are whole numbers: no ticks between them
  const STEP_AXIS = { label: 'global step', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6] };
  let charts = [];

  function size(el) {
    return { width: Math.max(280, el.clientWidth), height: 260 };
  }

  function draw() {
    for (const c of charts) c.destroy();
    charts = [];
    const block = document.getElementById('series');
    const lossEl = document.getElementById('chart-loss');
    const lrEl = document.getElementById('chart-lr');
    if (!block || !lossEl || !lrEl) return;
    const s = JSON.parse(block.textContent);
    const x = { x: { time: false } };
    charts.push(
      new uPlot(
        {
          ...size(lossEl),
          scales: x,
          axes: [STEP_AXIS, { label: 'loss' }],
          series: [
            { label: 'step' },
            { label: 'training loss', stroke: COLOURS.loss, width: 1.5 },
            { label: 'held-out loss', stroke: COLOURS.heldOut, width: 2, spanGaps: true, points: { show: true, size: 7, fill: COLOURS.heldOut } },
          ],
        },
        [s.steps, s.loss, s.heldOut],
        lossEl,
      ),
    );
    charts.push(
      new uPlot(
        {
          ...size(lrEl),
          scales: x,
          axes: [STEP_AXIS, { label: 'learning rate', size: 70, values: (_u, ticks) => ticks.map((t) => t.toExponential(1)) }],
          series: [{ label: 'step' }, { label: 'learning rate', stroke: COLOURS.lr, width: 1.5 }],
        },
        [s.steps, s.lr],
        lrEl,
      ),
    );
  }

  async function reload() {
    const res = await fetch(location.href, { headers: { accept: 'text/html' } });
    if (!res.ok) return;
    const fresh = new DOMParser().parseFromString(await res.text(), 'text/html').querySelector('main');
    if (!fresh) return;
    document.querySelector('main').replaceWith(document.adoptNode(fresh));
    draw();
  }

  async function poll() {
    const main = document.querySelector('main');
    if (main.dataset.live !== 'true') return;
    try {
      const res = await fetch(`${location.pathname}/head`, { headers: { accept: 'application/json' } });
      // sent to the sign-in form: the session ended, and so does refreshing
      if (res.redirected) return;
      if (res.ok) {
        const head = await res.json();
        if (String(head.seq ?? '') !== main.dataset.head) await reload();
      }
    } catch {
      // the server may be restarting: ask again next time
    }
    setTimeout(poll, POLL_MS);
  }

  let resizing;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(draw, 200);
  });
  draw();
  setTimeout(poll, POLL_MS);
})();
