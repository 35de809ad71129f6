/* Result page (resultado.html): reads GET /api/v1/totals every few seconds and
   redraws the per-participant percentages. The numbers are not a live region (a
   screen reader would otherwise read them every refresh); connection problems are
   announced politely. */
(function () {
  'use strict';

  const P = window.Paredao;
  const REFRESH_MS = 3000;

  const el = {
    enquete: document.getElementById('enquete'),
    placar: document.getElementById('placar'),
    total: document.getElementById('total'),
    barras: document.getElementById('barras'),
    atualizado: document.getElementById('atualizado'),
    caixaErro: document.getElementById('caixa-erro'),
    erroTexto: document.getElementById('erro-texto'),
  };

  let hadData = false;

  function render(totals) {
    if (totals.title) {
      el.enquete.textContent = totals.title + ' ';
      document.title = 'Resultado parcial: ' + totals.title;
    }
    el.total.textContent = P.formatNumber(totals.total);
    el.total.dataset.total = String(Number(totals.total) || 0);
    P.renderBars(el.barras, totals, null);
    el.atualizado.textContent = 'Atualizado às ' + P.formatTime(totals.asOf) + '.';
    el.placar.setAttribute('aria-busy', 'false');
    hadData = true;
  }

  async function refresh() {
    try {
      const totals = await P.requestJson('GET', P.API + '/totals', { timeoutMs: 8000 });
      render(totals);
      if (el.erroTexto.textContent) {
        el.erroTexto.textContent = '';
        el.caixaErro.classList.remove('ativa');
      }
    } catch (err) {
      el.caixaErro.classList.add('ativa');
      el.erroTexto.textContent = P.describeError(err, 'load') + ' ' +
        (hadData ? 'Mostrando a última parcial recebida; tentaremos de novo automaticamente.'
                 : 'Tentaremos de novo automaticamente.');
    }
  }

  P.every(REFRESH_MS, refresh);
})();
