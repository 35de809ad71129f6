/* Ballot page (index.html).
   - Loads the poll and shows the participants as large radio choices.
   - In the background, gets a proof-of-work challenge, solves it in a Web Worker
     (js/pow-worker.js) and exchanges it for a session token kept in sessionStorage.
     The viewer never sees the puzzle; any 401 on a vote gets a fresh session and the
     same vote is sent again.
   - Each click on "Votar" gets a fresh voteId (reused when that click is retried),
     so a retry is never counted twice. */
(function () {
  'use strict';

  const P = window.Paredao;
  const SESSION_KEY = 'paredao.session.v1';
  const SESSION_MARGIN_MS = 30 * 1000;   // treat a token as expired a little early
  const MAX_AUTH_RETRIES = 3;

  const el = {
    titulo: document.getElementById('titulo'),
    form: document.getElementById('cedula'),
    opcoes: document.getElementById('opcoes'),
    votar: document.getElementById('votar'),
    caixaErro: document.getElementById('caixa-erro'),
    erroTexto: document.getElementById('erro-texto'),
    erroRepetir: document.getElementById('erro-repetir'),
    status: document.getElementById('status'),
    confirmacao: document.getElementById('confirmacao'),
    parcial: document.getElementById('parcial'),
    parcialTotal: document.getElementById('parcial-total'),
    votarNovamente: document.getElementById('votar-novamente'),
  };

  let participants = [];
  let pollId = null;
  let pollState = null;
  let busy = false;
  let retryAction = null;

  /* ---- messages ----------------------------------------------------------------- */

  function showError(text, retry) {
    el.caixaErro.classList.add('ativa');
    el.erroTexto.textContent = text;
    retryAction = retry || null;
    el.erroRepetir.hidden = !retry;
    if (retry) el.erroRepetir.focus();
  }

  function clearError() {
    el.caixaErro.classList.remove('ativa');
    el.erroTexto.textContent = '';
    el.erroRepetir.hidden = true;
    retryAction = null;
  }

  function setStatus(text, className) {
    el.status.className = 'aviso ' + (className || 'status-ok');
    el.status.textContent = text;
  }

  function setBusy(value) {
    busy = value;
    el.votar.setAttribute('aria-busy', value ? 'true' : 'false');
    el.erroRepetir.setAttribute('aria-busy', value ? 'true' : 'false');
    el.votar.textContent = value ? 'Enviando voto…' : 'Votar';
  }

  el.erroRepetir.addEventListener('click', function () {
    if (busy || !retryAction) return;
    const action = retryAction;
    action();
  });

  /* ---- proof of work in a Web Worker ----------------------------------------------- */

  let worker = null;
  let nextJob = 1;
  const jobs = new Map();

  function getWorker() {
    if (worker) return worker;
    worker = new Worker('/js/pow-worker.js');
    worker.addEventListener('message', function (event) {
      const msg = event.data || {};
      const job = jobs.get(msg.id);
      if (!job) return;
      jobs.delete(msg.id);
      if (msg.error) job.reject(new Error(msg.error));
      else job.resolve(msg.counter);
    });
    worker.addEventListener('error', function (event) {
      event.preventDefault();
      const failed = Array.from(jobs.values());
      jobs.clear();
      worker.terminate();
      worker = null;
      failed.forEach(function (job) { job.reject(new Error('worker failed: ' + (event.message || ''))); });
    });
    return worker;
  }

  function solveChallenge(challenge, difficulty) {
    return new Promise(function (resolve, reject) {
      const id = nextJob++;
      jobs.set(id, { resolve: resolve, reject: reject });
      getWorker().postMessage({ id: id, challenge: challenge, difficulty: difficulty });
    });
  }

  /* ---- session token ---------------------------------------------------------------- */

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
      if (!s || typeof s.token !== 'string') return null;
      const expires = Date.parse(s.expiresAt);
      if (!Number.isNaN(expires) && expires - SESSION_MARGIN_MS < Date.now()) return null;
      if (typeof s.votesRemaining === 'number' && s.votesRemaining <= 0) return null;
      return s;
    } catch (err) {
      return null;
    }
  }

  function saveSession(s) {
    try { sessionStorage.setItem(SESSION_KEY, JSON.stringify(s)); } catch (err) { /* private mode */ }
    memorySession = s;
  }

  function dropSession(token) {
    const current = currentSession();
    if (current && token && current.token !== token) return;  // already replaced
    try { sessionStorage.removeItem(SESSION_KEY); } catch (err) { /* ignore */ }
    memorySession = null;
  }

  // Fallback when sessionStorage is unavailable (some private modes).
  let memorySession = null;
  function currentSession() {
    const stored = loadSession();
    if (stored) return stored;
    const m = memorySession;
    if (m && (Number.isNaN(Date.parse(m.expiresAt)) || Date.parse(m.expiresAt) - SESSION_MARGIN_MS > Date.now()) &&
        !(typeof m.votesRemaining === 'number' && m.votesRemaining <= 0)) {
      return m;
    }
    return null;
  }

  async function createSession() {
    let lastError = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      const ch = await P.requestJson('POST', P.API + '/challenges', { body: {} });
      const counter = await solveChallenge(ch.challenge, ch.difficulty);
      try {
        const s = await P.requestJson('POST', P.API + '/sessions', {
          body: { challenge: ch.challenge, counter: counter },
        });
        const session = { token: s.token, expiresAt: s.expiresAt, votesRemaining: s.votesRemaining };
        saveSession(session);
        return session;
      } catch (err) {
        // An expired/spent challenge or a rejected solution: start over with a new one.
        if (err instanceof P.ApiError && err.status === 401) { lastError = err; continue; }
        throw err;
      }
    }
    throw lastError;
  }

  let sessionPromise = null;
  function ensureSession() {
    const s = currentSession();
    if (s) return Promise.resolve(s);
    if (!sessionPromise) {
      sessionPromise = createSession().finally(function () { sessionPromise = null; });
    }
    return sessionPromise;
  }

  function prefetchSession() {
    // Errors are shown when the viewer votes (ensureSession runs again then).
    ensureSession().catch(function () { /* retried on vote */ });
  }

  /* ---- ballot ------------------------------------------------------------------------- */

  function renderParticipants(poll) {
    participants = poll.participants || [];
    if (poll.title) {
      el.titulo.textContent = poll.title;
      document.title = poll.title + ' — Votação do Paredão';
    }
    const nodes = participants.map(function (p) {
      const label = document.createElement('label');
      label.className = 'opcao';
      label.dataset.participant = p.id;

      const input = document.createElement('input');
      input.type = 'radio';
      input.name = 'participante';
      input.value = p.id;
      input.id = 'opcao-' + p.id;
      label.htmlFor = input.id;
      label.appendChild(input);

      label.appendChild(P.makePhoto(p.photoUrl));

      const name = document.createElement('span');
      name.className = 'nome';
      name.textContent = p.name;
      label.appendChild(name);

      const mark = document.createElement('span');
      mark.className = 'marcador';
      mark.setAttribute('aria-hidden', 'true');
      label.appendChild(mark);
      return label;
    });
    el.opcoes.replaceChildren.apply(el.opcoes, nodes);
    el.opcoes.setAttribute('aria-busy', 'false');
  }

  async function loadPoll() {
    clearError();
    el.opcoes.setAttribute('aria-busy', 'true');
    try {
      const data = await P.requestJson('GET', P.API + '/poll');
      if (!data.poll || !Array.isArray(data.poll.participants)) {
        throw new P.ApiError('protocol', 200, '', 'no poll');
      }
      pollId = data.poll.id;
      pollState = data.poll.state;
      renderParticipants(data.poll);
      if (pollState === 'closed') await showClosed();
    } catch (err) {
      const loading = document.getElementById('carregando');
      if (loading) loading.textContent = 'Não foi possível carregar os participantes.';
      showError(P.describeError(err, 'load'), loadPoll);
    }
  }

  function selectedParticipant() {
    const checked = el.form.querySelector('input[name="participante"]:checked');
    return checked ? checked.value : null;
  }

  function newVoteId() {
    // RFC 9562 version 7: 48 bits of Unix milliseconds, then random bits. Time-ordered ids
    // keep the store's id index growing at its end (the API makes the same kind).
    const b = self.crypto.getRandomValues(new Uint8Array(16));
    let ms = Date.now();
    for (let i = 5; i >= 0; i--) { b[i] = ms % 256; ms = Math.floor(ms / 256); }
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, function (x) { return x.toString(16).padStart(2, '0'); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function nameOf(id) {
    const p = participants.find(function (x) { return x.id === id; });
    return p ? p.name : id;
  }

  let shownVote = null;
  let shownAsOf = '';
  let shownAccepted = null;
  let followUps = [];

  /* The consumer counts a vote only after the broker confirmed it, within its batch
     window: a snapshot taken less than COUNTING_LAG_MS after the vote was accepted — the
     one in the vote answer always is, it was read before the confirm came — does not hold
     it yet. Count it in, so the confirmation shows the result "até aquele momento" with the
     viewer's own vote. Shares in tenths of a percent by the largest remainder, like the
     API, so they still add up to 100. */
  const COUNTING_LAG_MS = 1000;

  function withOwnVote(totals, accepted) {
    if (!accepted || !totals.asOf || !(Date.parse(totals.asOf) < Date.parse(accepted.acceptedAt) + COUNTING_LAG_MS)) return totals;
    const participants = (totals.participants || []).map(function (p) {
      return Object.assign({}, p, { votes: (Number(p.votes) || 0) + (p.id === accepted.participant ? 1 : 0) });
    });
    const total = (Number(totals.total) || 0) + 1;
    const tenths = participants.map(function (p) { return Math.floor(p.votes * 1000 / total); });
    let missing = 1000 - tenths.reduce(function (a, b) { return a + b; }, 0);
    participants.map(function (p, i) { return { i: i, rest: (p.votes * 1000) % total }; })
      .sort(function (a, b) { return b.rest - a.rest; })
      .forEach(function (entry) { if (missing > 0) { tenths[entry.i] += 1; missing -= 1; } });
    participants.forEach(function (p, i) { p.percentage = tenths[i] / 10; });
    return Object.assign({}, totals, { total: total, participants: participants });
  }

  function renderPartial(vote, snapshot) {
    shownAsOf = snapshot.asOf || '';
    const totals = withOwnVote(snapshot, shownAccepted);
    P.renderBars(el.parcial, totals, vote.participant);
    // The snapshot is refreshed about once a second, so it may not hold this vote yet.
    el.parcialTotal.textContent = Number(totals.total) > 0
      ? 'Total até agora: ' + P.formatVotes(totals.total) +
        (totals.asOf ? ' (parcial das ' + P.formatTime(totals.asOf) + ')' : '') + '.'
      : 'Seu voto está entre os primeiros: a parcial aparece em instantes no resultado.';
  }

  /* The snapshot in the vote answer is refreshed about once a second and usually does
     not hold this vote yet; read the totals again shortly after, while the
     confirmation is on screen. */
  async function followUp(vote) {
    if (shownVote !== vote || el.confirmacao.hidden) return;
    try {
      const totals = await P.requestJson('GET', P.API + '/totals', { timeoutMs: 5000 });
      if (shownVote === vote && !el.confirmacao.hidden && (totals.asOf || '') > shownAsOf) {
        renderPartial(vote, totals);
      }
    } catch (err) {
      // Optional refresh: the confirmation already shows the partial of the vote answer.
    }
  }

  function cancelFollowUps() {
    followUps.forEach(clearTimeout);
    followUps = [];
    shownVote = null;
  }

  function showConfirmation(vote, data) {
    cancelFollowUps();
    shownVote = vote;
    shownAccepted = data.vote || null;
    renderPartial(vote, data.totals || {});
    followUps = [2500, 6000, 12000].map(function (ms) { return setTimeout(function () { followUp(vote); }, ms); });
    el.form.hidden = true;
    el.confirmacao.hidden = false;
    setStatus('Voto registrado para ' + nameOf(vote.participant) + '! Obrigado por votar.');
    el.votarNovamente.focus();
  }

  /* The poll was closed on air: no more voting, the final result instead. */
  async function showClosed() {
    cancelFollowUps();
    el.form.hidden = true;
    el.confirmacao.hidden = false;
    el.votarNovamente.hidden = true;
    const titulo = document.getElementById('confirmacao-titulo');
    if (titulo) titulo.textContent = 'Votação encerrada — resultado final';
    const instrucao = document.getElementById('instrucao');
    if (instrucao) instrucao.textContent = 'Votação encerrada. Obrigado a quem votou!';
    setStatus('Votação encerrada.', 'status-neutro');
    try {
      const totals = await P.requestJson('GET', P.API + '/totals?poll=' + encodeURIComponent(pollId), { timeoutMs: 5000 });
      P.renderBars(el.parcial, totals, null);
      el.parcialTotal.textContent = 'Total de votos: ' + P.formatVotes(totals.total) + '.';
    } catch (err) {
      el.parcialTotal.textContent = 'O resultado final aparece em instantes.';
    }
  }

  /* While the page is open, notice a close (or a new paredão) announced on air. */
  async function watchPoll() {
    try {
      const data = await P.requestJson('GET', P.API + '/poll', { timeoutMs: 5000 });
      if (data.poll && (data.poll.id !== pollId || data.poll.state !== pollState)) {
        if (data.poll.id !== pollId) { window.location.reload(); return; }
        pollState = data.poll.state;
        if (pollState === 'closed') await showClosed();
      }
    } catch (err) {
      // Checked again at the next tick.
    }
  }

  async function sendVote(vote) {
    if (busy) return;
    setBusy(true);
    clearError();
    setStatus('Enviando seu voto…', 'status-neutro');
    try {
      let lastError = null;
      for (let attempt = 0; attempt < MAX_AUTH_RETRIES; attempt++) {
        const session = await ensureSession();
        try {
          const data = await P.requestJson('POST', P.API + '/votes', {
            token: session.token,
            body: { participant: vote.participant, voteId: vote.id, poll: pollId },
          });
          if (data.vote && typeof data.vote.votesRemaining === 'number') {
            session.votesRemaining = data.vote.votesRemaining;
            if (session.votesRemaining > 0) saveSession(session);
            else dropSession(session.token);
          }
          showConfirmation(vote, data);
          // Have the next session ready before the viewer votes again.
          if (!currentSession()) prefetchSession();
          return;
        } catch (err) {
          if (err instanceof P.ApiError && err.status === 401) {
            // Token expired, exhausted or unknown: get a new session, send the same vote.
            lastError = err;
            dropSession(session.token);
            continue;
          }
          throw err;
        }
      }
      throw lastError;
    } catch (err) {
      setStatus('');
      if (err instanceof P.ApiError && err.status === 409) {
        await watchPoll();
        if (pollState === 'closed') return;
      }
      showError(P.describeError(err, 'vote'), function () { sendVote(vote); });
    } finally {
      setBusy(false);
    }
  }

  el.form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (busy) return;
    const participant = selectedParticipant();
    if (!participant) {
      showError('Escolha um participante antes de votar.');
      const first = el.form.querySelector('input[name="participante"]');
      if (first) first.focus();
      return;
    }
    // A fresh id for every click; the retry button reuses the id of its click.
    sendVote({ participant: participant, id: newVoteId() });
  });

  el.opcoes.addEventListener('change', function () {
    if (!retryAction) clearError();
  });

  el.votarNovamente.addEventListener('click', function () {
    cancelFollowUps();
    setStatus('');
    clearError();
    el.confirmacao.hidden = true;
    el.form.hidden = false;
    const checked = el.form.querySelector('input[name="participante"]:checked') ||
      el.form.querySelector('input[name="participante"]');
    if (checked) checked.focus();
    prefetchSession();
  });

  loadPoll();
  prefetchSession();
  setInterval(watchPoll, 5000);
})();
