/* Producers' panel, admin section: the polls of the season through the admin API
   (/api/v1/admin/…): list them with their state and times, create and edit drafts, open
   one, close the open one (after a confirmation) and read the audit log.
   The admin credential ("produtor:SECRET") is sent as a Bearer header; it lives in this
   tab's sessionStorage only (gone when the tab closes), never in a URL or a cookie. */
(function () {
  'use strict';

  const P = window.Paredao;
  const ADMIN = P.API + '/admin';
  const KEY = 'paredao.admin.v1';
  const REFRESH_MS = 15000;
  const STATES = { draft: 'Rascunho', open: 'Aberta', closed: 'Encerrada' };
  const ACTIONS = { create: 'criou', edit: 'editou', open: 'abriu', close: 'encerrou' };

  const $ = function (id) { return document.getElementById(id); };
  const el = {
    login: $('admin-login'),
    credencial: $('admin-credencial'),
    entrar: $('admin-entrar'),
    area: $('admin-area'),
    caixaErro: $('admin-caixa-erro'),
    erro: $('admin-erro'),
    status: $('admin-status'),
    atualizar: $('admin-atualizar'),
    sair: $('admin-sair'),
    enquetes: document.querySelector('#tabela-enquetes tbody'),
    auditoria: document.querySelector('#tabela-auditoria tbody'),
    form: $('form-enquete'),
    formTitulo: $('form-titulo'),
    id: $('enquete-id'),
    titulo: $('enquete-titulo'),
    salvar: $('enquete-salvar'),
    cancelar: $('enquete-cancelar'),
    rows: Array.from(document.querySelectorAll('#form-enquete .participante')),
    dialog: $('confirmar-encerrar'),
    dialogTexto: $('confirmar-texto'),
    sim: $('confirmar-sim'),
    nao: $('confirmar-nao'),
  };

  const dateFormat = new Intl.DateTimeFormat('pt-BR', {
    day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });

  let polls = [];
  let editing = null;       // id of the draft in the form, or null for a new one
  let closing = null;       // the poll the confirmation dialog is about
  let timer = null;

  function credential() {
    try { return sessionStorage.getItem(KEY) || ''; } catch (err) { return ''; }
  }

  function setCredential(value) {
    try {
      if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY);
    } catch (err) {
      // Private mode without storage: the credential is then asked again on every load.
    }
  }

  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : dateFormat.format(d).replace(', ', ' ');
  }

  function cell(tag, text) {
    const c = document.createElement(tag);
    c.textContent = text;
    if (tag === 'th') c.scope = 'row';
    return c;
  }

  /* ---- messages ------------------------------------------------------------------ */

  function showError(text) {
    el.erro.textContent = text;
    el.caixaErro.classList.toggle('ativa', !!text);
    if (text) el.status.textContent = '';
  }

  function showStatus(text) {
    el.status.textContent = text;
    if (text) showError('');
  }

  function segundos(n) { return n === 1 ? '1 segundo' : n + ' segundos'; }

  /* The admin API's JSON errors, in plain Portuguese for the producers. */
  function describe(err) {
    if (!(err instanceof P.ApiError) || err.kind !== 'http') return P.describeError(err, 'load');
    const wait = err.retryAfter ? segundos(err.retryAfter) : 'alguns segundos';
    switch (err.code) {
      case 'admin_unauthenticated':
        return 'Informe a credencial de administração para continuar.';
      case 'admin_forbidden':
        return 'Credencial de administração recusada. Confira a linha de var/secrets/admin-token e tente de novo.';
      case 'admin_disabled':
        return 'A administração está desligada neste servidor: não há credencial configurada (PAREDAO_ADMIN_TOKEN_FILE).';
      case 'poll_exists':
        return 'Já existe uma votação com esse identificador. Escolha outro.';
      case 'poll_not_draft':
        return 'Só um rascunho pode ser editado ou aberto, e esta votação já foi aberta. A lista foi atualizada.';
      case 'poll_not_open':
        return 'Esta votação não está aberta: não há o que encerrar. A lista foi atualizada.';
      case 'another_poll_open':
        return 'Já há uma votação aberta. Encerre-a antes de abrir outra.';
      case 'poll_changed':
        return 'A votação mudou enquanto você agia (outra pessoa pode tê-la alterado). A lista foi atualizada; confira e tente de novo.';
      case 'unknown_poll':
        return 'Essa votação não existe. A lista foi atualizada.';
      case 'invalid_poll':
        return 'A votação não é válida: confira o identificador (letras minúsculas, números, - e _), o título, ' +
          'de 2 a 4 participantes com identificadores diferentes e fotos com endereço deste site (/img/…).';
      case 'invalid_json':
      case 'unsupported_media_type':
        return 'O pedido não pôde ser lido pelo servidor. Recarregue a página e tente de novo.';
      case 'rate_limited':
        return 'Muitas ações de administração em pouco tempo. Aguarde ' + wait + ' e tente de novo.';
      default:
        break;
    }
    switch (err.status) {
      case 401: return 'Informe a credencial de administração para continuar.';
      case 403: return 'Credencial de administração recusada. Confira e tente de novo.';
      case 409: return 'A ação não é possível no estado atual da votação. A lista foi atualizada.';
      case 429: return 'Muitas ações de administração em pouco tempo. Aguarde ' + wait + ' e tente de novo.';
      case 503: return 'O serviço está temporariamente fora do ar. Tente de novo em ' + wait + '.';
      default: return P.describeError(err, 'load');
    }
  }

  /* ---- requests ------------------------------------------------------------------ */

  const sleep = function (ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); };

  /* One admin request. A 429 (the API's per-network limit or nginx's per-IP one) is
     refused before anything is done, so it is retried, twice at most, after Retry-After
     when that is short; anything else is the caller's to tell. */
  async function admin(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await P.requestJson(method, ADMIN + path, { token: credential(), body: body, timeoutMs: 10000 });
      } catch (err) {
        const wait = err instanceof P.ApiError && err.status === 429 ? (err.retryAfter || 1) : 0;
        if (!wait || wait > 5 || attempt >= 2) throw err;
        el.status.textContent = 'Muitas ações seguidas: tentando de novo em ' + segundos(wait) + '…';
        await sleep(wait * 1000 + 100);
      }
    }
  }

  /* A refused credential logs out: the form asks for it again. */
  function handleAuthError(err) {
    if (err instanceof P.ApiError && (err.status === 401 || err.status === 403)) {
      setCredential('');
      showLoggedIn(false);
      el.credencial.focus();
    }
  }

  /* ---- rendering ------------------------------------------------------------------ */

  function actionButton(text, className, handler) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'botao botao-pequeno ' + (className || '');
    b.textContent = text;
    b.addEventListener('click', handler);
    return b;
  }

  function renderPolls() {
    const rows = polls.map(function (poll) {
      const tr = document.createElement('tr');
      tr.dataset.poll = poll.id;
      tr.dataset.state = poll.state;
      const name = cell('th', poll.title);
      const small = document.createElement('small');
      small.textContent = ' (' + poll.id + ')';
      name.appendChild(small);
      tr.appendChild(name);
      const state = cell('td', STATES[poll.state] || poll.state);
      state.className = 'estado estado-' + poll.state;
      tr.appendChild(state);
      tr.appendChild(cell('td', (poll.participants || []).map(function (p) { return p.name; }).join(', ')));
      tr.appendChild(cell('td', when(poll.createdAt)));
      tr.appendChild(cell('td', when(poll.openedAt)));
      tr.appendChild(cell('td', poll.closedAt ? when(poll.closedAt) : '—'));
      const actions = document.createElement('td');
      actions.className = 'acoes-tabela';
      if (poll.state === 'draft') {
        actions.appendChild(actionButton('Editar', 'botao-secundario acao-editar', function () { startEdit(poll); }));
        actions.appendChild(actionButton('Abrir votação', 'acao-abrir', function () { openPoll(poll); }));
      } else if (poll.state === 'open' && !poll.closedAt) {
        actions.appendChild(actionButton('Encerrar votação', 'botao-perigo acao-encerrar', function () { confirmClose(poll); }));
      } else if (poll.state === 'open') {
        actions.appendChild(cell('span', 'Encerrando…'));
      } else {
        actions.appendChild(actionButton('Ver resultado', 'botao-secundario acao-resultado', function () { showResult(poll); }));
      }
      tr.appendChild(actions);
      return tr;
    });
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('td', 'Nenhuma votação ainda.');
      td.colSpan = 7;
      tr.appendChild(td);
      rows.push(tr);
    }
    el.enquetes.replaceChildren.apply(el.enquetes, rows);
    if (window.ParedaoPainel) window.ParedaoPainel.setPolls(polls);
  }

  /* "open" → "abriu", "open_refused" → "abrir (recusado)", "auth_refused" → credential. */
  function actionText(action) {
    if (action === 'auth_refused') return 'credencial recusada';
    const m = /^([a-z]+)_(refused|failed)$/.exec(action || '');
    if (m && ACTIONS[m[1]]) return 'tentou: ' + ACTIONS[m[1]].replace(/iu$/, 'ir').replace(/ou$/, 'ar') + ' (' + (m[2] === 'refused' ? 'recusado' : 'falhou') + ')';
    return ACTIONS[action] || action;
  }

  function detailText(entry) {
    let detail;
    try { detail = JSON.parse(entry.detail || '{}'); } catch (err) { return String(entry.detail || '—'); }
    if (!detail || typeof detail !== 'object') return String(entry.detail || '—');
    if (entry.action === 'auth_refused' && typeof detail.refused === 'number') return refusalsText(detail);
    const parts = [];
    if (detail.title) parts.push('título: ' + detail.title);
    if (Array.isArray(detail.participants)) parts.push('participantes: ' + detail.participants.join(', '));
    Object.keys(detail).forEach(function (k) {
      if (k !== 'title' && k !== 'participants') parts.push(k + ': ' + String(detail[k]));
    });
    return parts.join('; ') || '—';
  }

  /* One row sums a window of refused credentials: "3 recusas de 1 rede em 60 s; mais:
     127.0.0.1 (nome produtor) ×2". */
  function refusalsText(detail) {
    const n = detail.refused;
    let text = n + (n === 1 ? ' recusa' : ' recusas') + ' de ' + detail.networks + (detail.networks === 1 ? ' rede' : ' redes') + ' em ' + detail.seconds + ' s';
    const top = Array.isArray(detail.top) ? detail.top.slice(0, 3) : [];
    if (top.length) {
      text += '; mais: ' + top.map(function (t) {
        return String(t.client) + (t.name && t.name !== 'unknown' ? ' (nome ' + t.name + ')' : '') + ' ×' + t.refused;
      }).join(', ');
    }
    return text;
  }

  function renderAudit(entries) {
    const rows = entries.map(function (entry) {
      const tr = document.createElement('tr');
      tr.dataset.action = entry.action;
      tr.dataset.poll = entry.poll || '';
      tr.appendChild(cell('th', when(entry.at)));
      tr.appendChild(cell('td', entry.actor));
      tr.appendChild(cell('td', actionText(entry.action)));
      tr.appendChild(cell('td', entry.poll || '—'));
      tr.appendChild(cell('td', detailText(entry)));
      tr.appendChild(cell('td', entry.client || '—'));
      return tr;
    });
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('td', 'Nada registrado ainda.');
      td.colSpan = 6;
      tr.appendChild(td);
      rows.push(tr);
    }
    el.auditoria.replaceChildren.apply(el.auditoria, rows);
  }

  /* ---- loading ------------------------------------------------------------------- */

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(load, ms);
  }

  /* Reads the polls and the audit log; a poll closing (open with a closing time) is read
     again just after its closing time, so that its state turns to Encerrada by itself. */
  async function load() {
    clearTimeout(timer);
    if (!credential()) return false;
    try {
      const list = await admin('GET', '/polls');
      polls = list.polls || [];
      renderPolls();
      const audit = await admin('GET', '/audit?limit=50');
      renderAudit(audit.entries || []);
      showLoggedIn(true);
      let next = REFRESH_MS;
      polls.forEach(function (p) {
        if (p.state === 'open' && p.closedAt) {
          const left = Date.parse(p.closedAt) - Date.now();
          if (Number.isFinite(left)) next = Math.min(next, Math.max(300, left + 300));
        }
      });
      schedule(next);
      return true;
    } catch (err) {
      handleAuthError(err);
      showError(describe(err));
      if (credential()) schedule(REFRESH_MS);
      return false;
    }
  }

  function showLoggedIn(on) {
    el.area.hidden = !on;
    el.login.hidden = on;
  }

  async function act(button, busyText, fn) {
    if (button) { button.disabled = true; button.setAttribute('aria-busy', 'true'); }
    showStatus(busyText);
    try {
      return await fn();
    } catch (err) {
      handleAuthError(err);
      showError(describe(err));
      if (err instanceof P.ApiError && (err.status === 404 || err.status === 409)) await load();
      return null;
    } finally {
      if (button) { button.disabled = false; button.removeAttribute('aria-busy'); }
    }
  }

  /* ---- the draft form ------------------------------------------------------------ */

  function field(row, name) { return row.querySelector('input[name=' + name + ']'); }

  function resetForm() {
    editing = null;
    el.form.reset();
    el.id.disabled = false;
    el.formTitulo.textContent = 'Novo paredão (rascunho)';
    el.salvar.textContent = 'Criar rascunho';
    el.cancelar.hidden = true;
  }

  function startEdit(poll) {
    editing = poll.id;
    el.form.reset();
    el.id.value = poll.id;
    el.id.disabled = true;
    el.titulo.value = poll.title;
    el.rows.forEach(function (row, i) {
      const p = (poll.participants || [])[i];
      field(row, 'pid').value = p ? p.id : '';
      field(row, 'pname').value = p ? p.name : '';
      field(row, 'pphoto').value = p ? (p.photoUrl || '') : '';
    });
    el.formTitulo.textContent = 'Editar rascunho “' + poll.title + '”';
    el.salvar.textContent = 'Salvar rascunho';
    el.cancelar.hidden = false;
    showStatus('');
    el.titulo.focus();
  }

  const ID = /^[a-z0-9_-]{1,64}$/;

  /* The form as the API wants it, or a pt-BR sentence saying what to fix. */
  function readForm() {
    const id = el.id.value.trim();
    const title = el.titulo.value.trim();
    if (!editing && !ID.test(id)) {
      return { problem: 'O identificador da votação usa de 1 a 64 letras minúsculas sem acento, números, - ou _.', focus: el.id };
    }
    if (!title) return { problem: 'Dê um título à votação.', focus: el.titulo };
    const participants = [];
    for (const row of el.rows) {
      const pid = field(row, 'pid').value.trim();
      const name = field(row, 'pname').value.trim();
      const photo = field(row, 'pphoto').value.trim();
      if (!pid && !name && !photo) continue;
      if (!ID.test(pid)) {
        return { problem: 'O identificador de cada participante usa letras minúsculas sem acento, números, - ou _.', focus: field(row, 'pid') };
      }
      if (!name) return { problem: 'Falta o nome do participante “' + pid + '”.', focus: field(row, 'pname') };
      if (photo && !/^\/(?!\/)[\x21-\x7e]+$/.test(photo)) {
        return { problem: 'A foto de “' + name + '” deve ser um endereço deste site, como /img/aline.svg (ou ficar vazia).', focus: field(row, 'pphoto') };
      }
      if (participants.some(function (p) { return p.id === pid; })) {
        return { problem: 'Dois participantes têm o mesmo identificador “' + pid + '”.', focus: field(row, 'pid') };
      }
      participants.push({ id: pid, name: name, photoUrl: photo });
    }
    if (participants.length < 2) return { problem: 'Um paredão tem de 2 a 4 participantes.', focus: field(el.rows[0], 'pid') };
    return { id: id, title: title, participants: participants };
  }

  async function submitForm(event) {
    event.preventDefault();
    const draft = readForm();
    if (draft.problem) {
      showError(draft.problem);
      draft.focus.focus();
      return;
    }
    const id = editing;
    const done = await act(el.salvar, id ? 'Salvando o rascunho…' : 'Criando o rascunho…', function () {
      return id
        ? admin('PUT', '/polls/' + encodeURIComponent(id), { title: draft.title, participants: draft.participants })
        : admin('POST', '/polls', draft);
    });
    if (done) {
      resetForm();
      await load();
      showStatus(id ? 'Rascunho “' + draft.title + '” salvo.' : 'Rascunho “' + draft.title + '” criado. Abra a votação quando for ao ar.');
    }
  }

  /* ---- open and close --------------------------------------------------------------- */

  async function openPoll(poll) {
    const done = await act(null, 'Abrindo a votação “' + poll.title + '”…', function () {
      return admin('POST', '/polls/' + encodeURIComponent(poll.id) + '/open');
    });
    if (done) {
      await load();
      showStatus('Votação “' + poll.title + '” aberta: a página de votação já mostra os participantes.');
      selectCurrent();
    }
  }

  function confirmClose(poll) {
    closing = poll;
    el.dialogTexto.textContent = 'Os votos de “' + poll.title + '” deixam de ser aceitos em poucos segundos e o ' +
      'resultado fica definitivo. Esta ação não pode ser desfeita.';
    if (typeof el.dialog.showModal === 'function') {
      el.dialog.showModal();
      el.nao.focus();
    } else if (window.confirm(el.dialogTexto.textContent)) {
      closeConfirmed();
    }
  }

  async function closeConfirmed() {
    const poll = closing;
    closing = null;
    if (el.dialog.open) el.dialog.close();
    if (!poll) return;
    const done = await act(null, 'Encerrando a votação “' + poll.title + '”…', function () {
      return admin('POST', '/polls/' + encodeURIComponent(poll.id) + '/close');
    });
    if (done) {
      await load();
      showStatus('Votação “' + poll.title + '” encerrada: votos recebidos a partir de ' +
        when(done.poll && done.poll.closedAt) + ' não contam. O resultado é definitivo.');
      selectCurrent();
    }
  }

  function selectCurrent() {
    const selector = $('seletor-enquete');
    if (selector) selector.value = '';
    if (window.ParedaoPainel) window.ParedaoPainel.refresh();
  }

  function showResult(poll) {
    const selector = $('seletor-enquete');
    if (!selector) return;
    selector.value = poll.id;
    selector.dispatchEvent(new Event('change'));
    selector.focus();
    window.scrollTo(0, 0);
  }

  /* ---- wiring --------------------------------------------------------------------- */

  el.login.addEventListener('submit', async function (event) {
    event.preventDefault();
    const value = el.credencial.value.trim();
    if (!/^[a-z0-9_-]{1,64}:.{16,}$/.test(value)) {
      showError('A credencial tem o formato nome:segredo (por exemplo produtor:…), com um segredo de 16 caracteres ou mais.');
      el.credencial.focus();
      return;
    }
    setCredential(value);
    el.entrar.disabled = true;
    const ok = await load();
    el.entrar.disabled = false;
    if (ok) {
      el.credencial.value = '';
      showStatus('Administração liberada.');
    }
  });

  el.sair.addEventListener('click', function () {
    clearTimeout(timer);
    setCredential('');
    polls = [];
    el.enquetes.replaceChildren();
    el.auditoria.replaceChildren();
    resetForm();
    showLoggedIn(false);
    showStatus('Você saiu da administração.');
    el.credencial.focus();
  });

  el.atualizar.addEventListener('click', async function () {
    if (await load()) showStatus('Lista atualizada.');
  });
  el.form.addEventListener('submit', submitForm);
  el.cancelar.addEventListener('click', function () { resetForm(); showStatus(''); });
  el.sim.addEventListener('click', closeConfirmed);
  el.nao.addEventListener('click', function () { closing = null; el.dialog.close(); });
  el.dialog.addEventListener('cancel', function () { closing = null; });

  window.ParedaoAdmin = { reload: load };

  showLoggedIn(false);
  if (credential()) load();
})();
