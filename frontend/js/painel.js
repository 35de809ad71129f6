/* Producers' panel (painel.html, behind nginx basic auth): overall total, votes per
   participant, votes per hour as a table and as a Chart.js stacked bar chart, with a
   CSV download of the hourly table generated in the browser. Refreshes itself. Shows
   the current poll, or any poll picked in the selector (`/totals?poll=ID`; the admin
   section, painel-admin.js, fills the selector with the polls it lists). */
(function () {
  'use strict';

  const P = window.Paredao;
  const REFRESH_MS = 5000;
  const COLORS = ['#4a1fb8', '#c2410c', '#047857', '#b91c1c', '#0e7490', '#a16207', '#6b21a8', '#334155'];

  const el = {
    enquete: document.getElementById('enquete'),
    total: document.getElementById('total'),
    atualizado: document.getElementById('atualizado'),
    caixaErro: document.getElementById('caixa-erro'),
    erroTexto: document.getElementById('erro-texto'),
    participantes: document.querySelector('#tabela-participantes tbody'),
    horasHead: document.querySelector('#tabela-horas thead tr'),
    horasBody: document.querySelector('#tabela-horas tbody'),
    canvas: document.getElementById('grafico'),
    csv: document.getElementById('baixar-csv'),
    seletor: document.getElementById('seletor-enquete'),
  };

  const STATE_NAMES = { draft: 'rascunho', open: 'aberta', closed: 'encerrada' };

  const hourFormat = new Intl.DateTimeFormat('pt-BR', {
    day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit',
  });

  let latest = null;
  let chart = null;
  let refreshNow = null;

  function cell(tag, text, scope) {
    const c = document.createElement(tag);
    c.textContent = text;
    if (scope) c.scope = scope;
    return c;
  }

  /* Participants in poll order, plus any id that only shows up in the hourly data. */
  function columns(totals) {
    const cols = (totals.participants || []).map(function (p) { return { id: p.id, name: p.name }; });
    const known = new Set(cols.map(function (c) { return c.id; }));
    (totals.hours || []).forEach(function (h) {
      Object.keys(h.votes || {}).forEach(function (id) {
        if (!known.has(id)) { known.add(id); cols.push({ id: id, name: id }); }
      });
    });
    return cols;
  }

  function hourLabel(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : hourFormat.format(d).replace(', ', ' ');
  }

  function renderParticipants(totals) {
    const rows = (totals.participants || []).map(function (p) {
      const tr = document.createElement('tr');
      tr.dataset.participant = p.id;
      tr.appendChild(cell('th', p.name, 'row'));
      tr.appendChild(cell('td', P.formatNumber(p.votes)));
      tr.appendChild(cell('td', P.formatPct(p.percentage)));
      return tr;
    });
    el.participantes.replaceChildren.apply(el.participantes, rows);
  }

  function renderHours(totals, cols) {
    const head = [cell('th', 'Hora', 'col'), cell('th', 'Total', 'col')];
    cols.forEach(function (c) { head.push(cell('th', c.name, 'col')); });
    el.horasHead.replaceChildren.apply(el.horasHead, head);

    const hours = totals.hours || [];
    let rows;
    if (hours.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('td', 'Ainda não há votos.');
      td.colSpan = cols.length + 2;
      tr.appendChild(td);
      rows = [tr];
    } else {
      // Newest hour first in the table; the chart reads left to right, oldest first.
      rows = hours.slice().reverse().map(function (h) {
        const tr = document.createElement('tr');
        tr.dataset.hour = h.hour;
        tr.appendChild(cell('th', hourLabel(h.hour), 'row'));
        tr.appendChild(cell('td', P.formatNumber(h.total)));
        cols.forEach(function (c) {
          tr.appendChild(cell('td', P.formatNumber((h.votes || {})[c.id] || 0)));
        });
        return tr;
      });
    }
    el.horasBody.replaceChildren.apply(el.horasBody, rows);
  }

  function renderChart(totals, cols) {
    if (typeof window.Chart !== 'function') {
      el.canvas.setAttribute('aria-label', 'Gráfico indisponível');
      return;
    }
    const hours = totals.hours || [];
    const labels = hours.map(function (h) { return hourLabel(h.hour); });
    const datasets = cols.map(function (c, i) {
      return {
        label: c.name,
        data: hours.map(function (h) { return (h.votes || {})[c.id] || 0; }),
        backgroundColor: COLORS[i % COLORS.length],
        borderWidth: 0,
      };
    });
    if (!chart) {
      window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      window.Chart.defaults.font.size = 13;
      window.Chart.defaults.color = '#1b1b2f';
      chart = new window.Chart(el.canvas, {
        type: 'bar',
        data: { labels: labels, datasets: datasets },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          locale: 'pt-BR',
          interaction: { mode: 'index', intersect: false },
          scales: {
            x: { stacked: true, ticks: { color: '#1b1b2f' }, grid: { display: false } },
            y: { stacked: true, beginAtZero: true, ticks: { color: '#1b1b2f', precision: 0 } },
          },
          plugins: {
            legend: { position: 'bottom', labels: { color: '#1b1b2f' } },
          },
        },
      });
    } else {
      chart.data.labels = labels;
      chart.data.datasets = datasets;
      chart.update('none');
    }
  }

  /* ---- CSV ---------------------------------------------------------------------- */

  function csvField(value) {
    let s = String(value);
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;   // no formulas in spreadsheets
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function buildCsv(totals) {
    const cols = columns(totals);
    const lines = [['hora_utc', 'total'].concat(cols.map(function (c) { return c.name; }))];
    (totals.hours || []).forEach(function (h) {
      lines.push([h.hour, Number(h.total) || 0].concat(cols.map(function (c) {
        return Number((h.votes || {})[c.id]) || 0;
      })));
    });
    return lines.map(function (row) { return row.map(csvField).join(','); }).join('\r\n') + '\r\n';
  }

  function downloadCsv() {
    if (!latest) return;
    // BOM so spreadsheet programs read the accents as UTF-8.
    const blob = new Blob(['\ufeff' + buildCsv(latest)], { type: 'text/csv;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const a = document.createElement('a');
    a.href = url;
    a.download = 'paredao-' + String(latest.poll || 'votos').replace(/[^A-Za-z0-9_-]/g, '') +
      '-por-hora-' + stamp + '.csv';
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  el.csv.addEventListener('click', downloadCsv);

  /* ---- refresh ------------------------------------------------------------------ */

  async function refresh() {
    try {
      const chosen = el.seletor.value;
      const totals = await P.requestJson('GET', P.API + '/totals' + (chosen ? '?poll=' + encodeURIComponent(chosen) : ''),
        { timeoutMs: 8000 });
      if (el.seletor.value !== chosen) return;   // the producer picked another poll meanwhile
      latest = totals;
      if (totals.title) el.enquete.textContent = totals.title;
      el.total.textContent = P.formatNumber(totals.total);
      el.total.dataset.total = String(Number(totals.total) || 0);
      const cols = columns(totals);
      renderParticipants(totals);
      renderHours(totals, cols);
      renderChart(totals, cols);
      el.csv.disabled = false;
      el.atualizado.textContent = 'Dados de ' + P.formatTime(totals.asOf) + '.';
      if (el.erroTexto.textContent) {
        el.erroTexto.textContent = '';
        el.caixaErro.classList.remove('ativa');
      }
    } catch (err) {
      el.caixaErro.classList.add('ativa');
      el.erroTexto.textContent = P.describeError(err, 'load') +
        (latest ? ' Mostrando os últimos dados recebidos; tentaremos de novo automaticamente.'
                : ' Tentaremos de novo automaticamente.');
    }
  }

  /* The selector's options: "the current poll" plus every poll but drafts (no votes),
     newest first, keeping the producer's choice when it is still listed. */
  function setPolls(polls) {
    const chosen = el.seletor.value;
    const options = [new Option('Votação atual', '')];
    polls.filter(function (p) { return p.state !== 'draft'; })
      .sort(function (a, b) { return String(b.openedAt || '').localeCompare(String(a.openedAt || '')); })
      .forEach(function (p) {
        const option = new Option(p.title + ' (' + (STATE_NAMES[p.state] || p.state) + ')', p.id);
        option.dataset.state = p.state;
        options.push(option);
      });
    el.seletor.replaceChildren.apply(el.seletor, options);
    el.seletor.value = options.some(function (o) { return o.value === chosen; }) ? chosen : '';
  }

  el.seletor.addEventListener('change', function () {
    el.atualizado.textContent = 'Carregando…';
    if (refreshNow) refreshNow();
  });

  // Exposed for the admin section, for tests and for the browser console.
  window.ParedaoPainel = {
    buildCsv: function () { return latest ? buildCsv(latest) : ''; },
    setPolls: setPolls,
    refresh: function () { if (refreshNow) refreshNow(); },
  };

  refreshNow = P.every(REFRESH_MS, refresh);
})();
