/* Shared helpers for the Paredão pages: JSON requests with a timeout, errors in
   plain Portuguese, number formatting and the percentage bars.
   Exposes a single global: window.Paredao. No inline scripts (CSP default-src 'self'). */
(function () {
  'use strict';

  const API = '/api/v1';
  const FALLBACK_PHOTO = '/img/sem-foto.svg';

  class ApiError extends Error {
    /* kind: 'http' (the server answered with an error status), 'network' (no answer),
       'timeout' (no answer in time) or 'protocol' (an answer we could not read). */
    constructor(kind, status, code, message, retryAfter) {
      super(message || code || kind);
      this.name = 'ApiError';
      this.kind = kind;
      this.status = status || 0;
      this.code = code || '';
      this.retryAfter = retryAfter;  // seconds, or null
    }
  }

  function parseRetryAfter(value) {
    if (!value) return null;
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
    const date = Date.parse(value);
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - Date.now()) / 1000));
    return null;
  }

  /* fetch() + JSON with a timeout. Resolves to the parsed body of a 2xx answer,
     rejects with an ApiError otherwise. */
  async function requestJson(method, path, options) {
    const opts = options || {};
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), opts.timeoutMs || 15000);
    const headers = { 'Accept': 'application/json' };
    let body;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    if (opts.token) headers['Authorization'] = 'Bearer ' + opts.token;
    try {
      let response;
      try {
        // Absolute URL from location.origin: a page opened as http://user:pass@host/...
        // would otherwise resolve relative URLs with the credentials, which fetch() refuses.
        response = await fetch(location.origin + path, {
          method: method,
          headers: headers,
          body: body,
          cache: 'no-store',
          credentials: 'same-origin',
          signal: controller.signal,
        });
      } catch (err) {
        if (err && err.name === 'AbortError') throw new ApiError('timeout', 0, '', 'timeout');
        throw new ApiError('network', 0, '', String(err && err.message || err));
      }
      let data = null;
      try {
        const text = await response.text();
        data = text ? JSON.parse(text) : null;
      } catch (err) {
        if (err && err.name === 'AbortError') throw new ApiError('timeout', response.status, '', 'timeout');
        data = null;
      }
      if (!response.ok) {
        const e = data && data.error ? data.error : {};
        throw new ApiError('http', response.status, e.code || '', e.message || response.statusText,
          parseRetryAfter(response.headers.get('Retry-After')));
      }
      if (data === null) throw new ApiError('protocol', response.status, '', 'empty or invalid JSON');
      return data;
    } finally {
      clearTimeout(timer);
    }
  }

  function segundos(n) {
    return n === 1 ? '1 segundo' : n + ' segundos';
  }

  /* Turns any failure into one or two plain Portuguese sentences for the viewer.
     context: 'vote' (casting a vote) or 'load' (reading data). */
  function describeError(err, context) {
    const voting = context === 'vote';
    const wait = err && err.retryAfter ? segundos(err.retryAfter) : 'alguns segundos';
    if (!(err instanceof ApiError)) {
      return 'Algo deu errado aqui na página. Tente de novo.';
    }
    if (err.kind === 'network') {
      return (voting ? 'Seu voto não foi enviado: não conseguimos falar com o servidor. '
                     : 'Não conseguimos falar com o servidor. ') +
        'Confira sua conexão com a internet e tente de novo.';
    }
    if (err.kind === 'timeout') {
      return voting
        ? 'O servidor demorou demais para responder e não sabemos se seu voto chegou. ' +
          'Tente de novo: se ele já tiver sido contado, não será contado duas vezes.'
        : 'O servidor demorou demais para responder. Tente de novo em alguns segundos.';
    }
    if (err.kind === 'protocol') {
      return 'Recebemos uma resposta inesperada do servidor. Tente de novo em alguns segundos.';
    }
    switch (err.status) {
      case 429:
        return 'Muitas tentativas em pouco tempo. Aguarde ' + wait + ' e tente de novo.';
      case 503:
        if (err.code === 'broker_timeout') {
          return 'A votação está lenta agora e não conseguimos confirmar seu voto. ' +
            'Tente de novo em ' + wait + ': se ele já tiver sido contado, não será contado duas vezes.';
        }
        if (!voting) return 'O serviço está temporariamente fora do ar. Tente de novo em ' + wait + '.';
        if (err.code === 'broker_unavailable') {
          return 'A votação está temporariamente fora do ar e seu voto não foi registrado. ' +
            'Tente de novo em ' + wait + '.';
        }
        return 'A votação está temporariamente fora do ar e não conseguimos confirmar seu voto. ' +
          'Tente de novo em ' + wait + ': se ele já tiver sido contado, não será contado duas vezes.';
      case 422:
        return 'Essa opção de voto não existe mais. Recarregue a página e escolha de novo.';
      case 400:
      case 413:
      case 415:
        return 'Não foi possível enviar o pedido. Recarregue a página e tente de novo.';
      case 401:
        return 'Sua sessão de votação expirou. Tente de novo.';
      default:
        if (err.status >= 500) {
          return (voting ? 'O servidor teve um problema e seu voto não foi confirmado. '
                         : 'O servidor teve um problema. ') +
            'Tente de novo em ' + wait + '.';
        }
        return 'Algo deu errado (erro ' + err.status + '). Tente de novo.';
    }
  }

  const numberFormat = new Intl.NumberFormat('pt-BR');
  const pctFormat = new Intl.NumberFormat('pt-BR', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const timeFormat = new Intl.DateTimeFormat('pt-BR', { hour: '2-digit', minute: '2-digit', second: '2-digit' });

  function formatNumber(n) { return numberFormat.format(Number(n) || 0); }
  function formatPct(p) { return pctFormat.format(Number(p) || 0) + '%'; }
  function formatVotes(n) { return formatNumber(n) + (Number(n) === 1 ? ' voto' : ' votos'); }
  function formatTime(iso) {
    const d = iso ? new Date(iso) : new Date();
    return timeFormat.format(Number.isNaN(d.getTime()) ? new Date() : d);
  }

  /* Only same-origin relative photo paths are used; anything else gets the fallback. */
  function photoUrl(url) {
    return typeof url === 'string' && /^\/(?!\/)[A-Za-z0-9._\/-]+$/.test(url) ? url : FALLBACK_PHOTO;
  }

  function makePhoto(url, className) {
    const img = document.createElement('img');
    img.alt = '';
    img.width = 96;
    img.height = 96;
    img.decoding = 'async';
    if (className) img.className = className;
    img.addEventListener('error', function onError() {
      img.removeEventListener('error', onError);
      img.src = FALLBACK_PHOTO;
    });
    img.src = photoUrl(url);
    return img;
  }

  /* Renders the participants of a totals snapshot as labelled percentage bars into
     the <ul> `list`. highlightId marks the participant the viewer just voted for. */
  function renderBars(list, totals, highlightId) {
    const items = [];
    (totals.participants || []).forEach(function (p) {
      const li = document.createElement('li');
      li.dataset.participant = p.id;
      if (p.id === highlightId) li.classList.add('escolhido');
      li.appendChild(makePhoto(p.photoUrl));

      const name = document.createElement('span');
      name.className = 'nome';
      name.textContent = p.name;
      li.appendChild(name);

      const pct = document.createElement('span');
      pct.className = 'pct';
      pct.dataset.percentage = String(Number(p.percentage) || 0);
      pct.textContent = formatPct(p.percentage);
      li.appendChild(pct);

      const track = document.createElement('span');
      track.className = 'trilho';
      track.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span');
      fill.className = 'preenchimento';
      // CSSOM assignment, allowed by the CSP (unlike a style attribute).
      fill.style.width = Math.max(0, Math.min(100, Number(p.percentage) || 0)) + '%';
      track.appendChild(fill);
      li.appendChild(track);

      const votes = document.createElement('span');
      votes.className = 'votos';
      votes.dataset.votes = String(Number(p.votes) || 0);
      votes.textContent = formatVotes(p.votes);
      li.appendChild(votes);
      items.push(li);
    });
    list.replaceChildren.apply(list, items);
  }

  /* Calls fn now and then every intervalMs after each call settles; skips calls
     while the tab is hidden and refreshes at once when it becomes visible again. */
  function every(intervalMs, fn) {
    let timer = null;
    let running = false;
    async function tick() {
      clearTimeout(timer);
      if (document.hidden) { timer = null; return; }
      if (running) return;
      running = true;
      try { await fn(); } finally {
        running = false;
        timer = setTimeout(tick, intervalMs);
      }
    }
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden) tick();
    });
    tick();
    return tick;
  }

  window.Paredao = {
    API: API,
    ApiError: ApiError,
    requestJson: requestJson,
    describeError: describeError,
    formatNumber: formatNumber,
    formatPct: formatPct,
    formatVotes: formatVotes,
    formatTime: formatTime,
    makePhoto: makePhoto,
    renderBars: renderBars,
    every: every,
  };
})();
