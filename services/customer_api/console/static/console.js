// The Gridlease web console: plain JavaScript over the customer API's JSON routes (/v1), the
// same calls the CLI makes. No framework, no build step. The API key lives in sessionStorage
// (this tab only) and goes out as "Authorization: Bearer ...".
"use strict";

(() => {
  const M = window.GridleaseMoney;
  const API = document.querySelector('meta[name="gridlease-api"]').content;
  const KEY = "gridlease.apiKey";
  const POLL_STARTING_MS = 1000; // while a lease starts: its steps change within seconds
  const POLL_RUNNING_MS = 5000; // afterwards: what it has spent
  let info = null; // the chain's token and block time (GET /chain/info)
  let watched = null; // {leaseId, timer, createdAt (ms, performance.now) or null}

  const $ = (id) => document.getElementById(id);

  // -- talking to the API -----------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code || null;
    }
  }

  function explain(status, body, response) {
    let text = `${status} ${response.statusText}`;
    if (body && typeof body.detail === "string") {
      text = body.detail + (body.code ? ` (${body.code})` : "");
    } else if (body && Array.isArray(body.detail)) {
      text = body.detail
        .map((e) => {
          const where = (e.loc || []).filter((part) => part !== "body" && part !== "query");
          return (where.length ? `${where.join(".")}: ` : "") + e.msg;
        })
        .join("; ");
    }
    const retry = response.headers.get("Retry-After");
    if (retry && (status === 429 || status === 503)) text += ` (try again in ${retry} s)`;
    if (status === 401) text += ": sign in again with a valid API key";
    return text;
  }

  async function api(method, path, { body, params, headers } = {}) {
    const url = new URL(API + path, window.location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      for (const one of Array.isArray(value) ? value : [value]) {
        if (one !== "" && one !== null && one !== undefined) url.searchParams.append(name, one);
      }
    }
    const sent = { Accept: "application/json", ...(headers || {}) };
    const apiKey = sessionStorage.getItem(KEY);
    if (apiKey) sent.Authorization = `Bearer ${apiKey}`;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, `the API did not answer (${error.message})`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      throw new ApiError(response.status, explain(response.status, data, response), data && data.code);
    }
    return data;
  }

  // -- messages ----------------------------------------------------------------------------------
  function showError(error) {
    const box = $("error");
    box.textContent = `Error: ${error.message}`;
    box.hidden = false;
  }

  function notice(text) {
    $("error").hidden = true;
    $("notice").textContent = text;
  }

  /** Runs an action for a form or button, showing its error instead of throwing, and disabling
   * the control meanwhile so a double click does not send twice. */
  async function guarded(control, action) {
    control.disabled = true;
    try {
      $("error").hidden = true;
      await action();
    } catch (error) {
      showError(error);
    } finally {
      control.disabled = false;
    }
  }

  function onSubmit(formId, action) {
    const form = $(formId);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(form.querySelector('button[type="submit"]'), () => action(form));
    });
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", () => guarded(b, onClick));
    return b;
  }

  const short = (id) => (id.length > 14 ? `${id.slice(0, 12)}…` : id);
  const count = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;

  async function chain() {
    if (info === null) {
      info = M.chainInfo(await api("GET", "/chain/info"));
      for (const el of document.querySelectorAll(".symbol")) el.textContent = info.symbol;
      $("block-time").textContent = `${info.blockTimeMs} ms per block`;
    }
    return info;
  }

  // -- signing in --------------------------------------------------------------------------------
  const signedIn = () => sessionStorage.getItem(KEY) !== null;

  function showSignedIn(customer) {
    $("who").textContent = `Signed in as ${customer.name} (${customer.address}).`;
    $("sign-out").hidden = false;
    $("auth").hidden = true;
    for (const id of ["account", "create", "leases"]) $(id).hidden = false;
  }

  function showSignedOut() {
    stopWatching();
    $("who").textContent = "Not signed in.";
    $("sign-out").hidden = true;
    $("auth").hidden = false;
    for (const id of ["account", "create", "leases", "watch", "new-key"]) $(id).hidden = true;
  }

  async function signIn(apiKey) {
    sessionStorage.setItem(KEY, apiKey);
    let customer;
    try {
      customer = await api("GET", "/auth/me");
    } catch (error) {
      if (error.status === 401) sessionStorage.removeItem(KEY);
      throw error;
    }
    showSignedIn(customer);
    await Promise.all([refreshAccount(), refreshLeases()]);
    return customer;
  }

  onSubmit("signup-form", async (form) => {
    const body = await api("POST", "/auth/signup", { body: { name: form.elements.name.value } });
    await signIn(body.api_key);
    $("new-key-value").value = body.api_key;
    $("new-key").hidden = false;
    $("new-key-value").focus();
    $("new-key-value").select();
    notice(`Signed up as ${body.customer.name}. Add test tokens, then lease GPUs.`);
  });

  onSubmit("signin-form", async (form) => {
    const customer = await signIn(form.elements.api_key.value.trim());
    form.reset();
    notice(`Signed in as ${customer.name}.`);
  });

  $("new-key-done").addEventListener("click", () => {
    $("new-key-value").value = "";
    $("new-key").hidden = true;
  });

  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showSignedOut();
    notice("Signed out: the API key is gone from this tab.");
  });

  // -- account -----------------------------------------------------------------------------------
  async function refreshAccount() {
    const [account, chainInfo] = await Promise.all([api("GET", "/account"), chain()]);
    $("account-address").textContent = account.address;
    $("account-free").textContent = M.money(account.free, chainInfo);
    $("account-held").textContent = M.money(account.held_in_escrow, chainInfo);
    $("account-spent").textContent = M.money(account.total_spent, chainInfo);
    const body = $("spending").tBodies[0];
    body.replaceChildren();
    for (const lease of account.leases) {
      const row = body.insertRow();
      cell(row, String(lease.lease_id), "num");
      cell(row, lease.state);
      cell(row, M.money(lease.escrow, chainInfo), "num");
      cell(row, M.money(lease.spent, chainInfo), "num");
      cell(row, M.money(lease.refunded, chainInfo), "num");
      cell(row, M.money(lease.compensation, chainInfo), "num");
    }
  }

  $("account-refresh").addEventListener("click", (e) => guarded(e.currentTarget, refreshAccount));

  onSubmit("faucet-form", async (form) => {
    const chainInfo = await chain();
    const amount = M.parseTokens(form.elements.amount.value, chainInfo.decimals);
    const result = await api("POST", "/account/faucet", { body: { amount: amount.toString() } });
    notice(`Added ${M.money(result.amount, chainInfo)} (block ${result.block_number}).`);
    await refreshAccount();
  });

  // -- offers ------------------------------------------------------------------------------------
  function offerRow(body, offer, fails) {
    const row = body.insertRow();
    const machine = cell(row, short(offer.machine_id), "mono");
    machine.title = offer.machine_id;
    cell(row, offer.gpu_model);
    cell(row, `${offer.free_gpus}/${offer.gpu_count}`, "num");
    cell(row, String(offer.memory_mib), "num");
    cell(row, M.perGpuHour(offer.price_per_gpu_block, info), "num");
    cell(row, M.tokens(offer.price_per_gpu_block, info.decimals), "num");
    cell(row, offer.region);
    cell(row, fails || "");
    const action = row.insertCell();
    if (offer.free_gpus > 0) {
      const choose = button(`Lease ${short(offer.machine_id)}`, () => chooseOffer(offer));
      choose.setAttribute("aria-label", `Lease GPUs of machine ${offer.machine_id}`);
      action.append(choose);
    }
  }

  function chooseOffer(offer) {
    if (!signedIn()) {
      notice("Sign up or sign in first: leasing needs an API key.");
      $("signup-name").focus();
      return;
    }
    $("l-machine").value = offer.machine_id;
    $("l-gpus").max = String(offer.free_gpus);
    $("create").dataset.price = offer.price_per_gpu_block;
    updateCost();
    $("l-gpus").focus();
    notice(`Machine ${short(offer.machine_id)} chosen (${offer.gpu_model}): set GPUs and hours.`);
  }

  onSubmit("offers-form", async (form) => {
    const chainInfo = await chain();
    const f = form.elements;
    const params = {
      gpu_model: f.gpu_model.value.trim(),
      min_gpus: f.min_gpus.value,
      min_memory_mib: f.min_memory_mib.value,
      region: f.region.value.trim(),
      sort: f.sort.value,
      label: f.labels.value.split(",").map((s) => s.trim()).filter(Boolean),
      limit: 50,
    };
    if (f.max_price.value.trim()) {
      params.max_price_per_gpu_block = M.maxBlockPrice(f.max_price.value, chainInfo).toString();
    }
    const result = await api("GET", "/offers", { params });
    const table = $("offers-table");
    const body = table.tBodies[0];
    body.replaceChildren();
    $("no-match").hidden = true;
    if (result.data.length) {
      for (const offer of result.data) offerRow(body, offer, "");
      table.caption.textContent = "Offers";
      table.hidden = false;
      $("offers-summary").textContent =
        `${count(result.count, "offer")}; prices at ${chainInfo.blockTimeMs} ms per block.`;
      return;
    }
    $("offers-summary").textContent = "No offer matches.";
    const why = result.no_match;
    table.hidden = true;
    if (!why) return;
    const reasons = $("no-match-reasons");
    reasons.replaceChildren();
    const total = document.createElement("li");
    total.textContent = `${count(why.total_offers, "offer")} in all.`;
    reasons.append(total);
    for (const ex of why.excluded_by) {
      const li = document.createElement("li");
      li.textContent = `${ex.filter} excluded ${ex.excluded}`;
      reasons.append(li);
    }
    $("no-match").hidden = false;
    if (why.nearest.length) {
      for (const near of why.nearest) offerRow(body, near.offer, near.failed_filters.join(", "));
      table.caption.textContent = "Nearest offers (and the filters they fail)";
      table.hidden = false;
    }
  });

  // -- leases ------------------------------------------------------------------------------------
  function leaseBlocks(form, chainInfo) {
    return M.hoursToBlocks(form.elements.hours.value, chainInfo);
  }

  function updateCost() {
    const price = $("create").dataset.price;
    const text = $("lease-cost");
    text.textContent = "";
    if (!price || info === null) return;
    try {
      const blocks = leaseBlocks($("lease-form"), info);
      const gpus = BigInt($("l-gpus").value || "0");
      text.textContent =
        `${blocks} blocks at ${M.priceText(price, info)}: about ` +
        `${M.money(BigInt(price) * gpus * blocks, info)} held in escrow, unused part refunded.`;
    } catch {
      // half-typed numbers: nothing to show yet
    }
  }

  for (const id of ["l-gpus", "l-hours", "l-machine"]) $(id).addEventListener("input", updateCost);

  function ports(text) {
    return text
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => {
        if (!/^\d{1,5}$/.test(s)) throw new Error(`a port is a number from 1 to 65535, not ${JSON.stringify(s)}`);
        return Number(s);
      });
  }

  onSubmit("lease-form", async (form) => {
    const chainInfo = await chain();
    const f = form.elements;
    const body = {
      machine_id: f.machine_id.value.trim(),
      gpus: Number(f.gpus.value),
      duration_blocks: Number(leaseBlocks(form, chainInfo)),
      image: f.image.value.trim(),
      ssh_public_key: f.ssh_public_key.value.trim(),
      ports: ports(f.ports.value),
    };
    // One key per lease asked for, kept until the API answers: when the answer is lost
    // (network, 5xx) submitting again returns the same lease instead of paying for a second.
    if (!form.dataset.idempotencyKey) form.dataset.idempotencyKey = crypto.randomUUID();
    const createdAt = performance.now();
    let lease;
    try {
      lease = await api("POST", "/leases", {
        body,
        headers: { "Idempotency-Key": form.dataset.idempotencyKey },
      });
    } catch (error) {
      if (error.status && error.status < 500) delete form.dataset.idempotencyKey; // refused
      else error.message += ". The lease may have been created: submit again to get it (it is never created or paid twice)";
      throw error;
    }
    delete form.dataset.idempotencyKey;
    notice(`Lease ${lease.lease_id} created on chain; escrow ${M.money(lease.escrow, chainInfo)}.`);
    await watch(lease.lease_id, createdAt);
    await Promise.all([refreshLeases(), refreshAccount()]);
  });

  function stopWatching() {
    if (watched !== null) clearTimeout(watched.timer);
    watched = null;
  }

  function showSteps(lease) {
    const [done, detail] = M.leaseSteps(lease);
    const list = $("w-steps");
    list.replaceChildren();
    M.LEASE_STEPS.forEach((name, i) => {
      const li = document.createElement("li");
      const status = i < done ? "done" : i === done && lease.state !== "ended" ? "current" : "waiting";
      li.dataset.status = status;
      li.textContent = name + (status === "done" ? " (done)" : status === "current" ? " (in progress)" : "");
      list.append(li);
    });
    $("w-detail").textContent = lease.state === "ended" ? "" : detail;
  }

  function showLease(lease) {
    const chainInfo = info;
    $("w-id").textContent = String(lease.lease_id);
    showSteps(lease);
    $("w-state").textContent = lease.state + (lease.end_reason ? ` (${lease.end_reason})` : "");
    $("w-machine").textContent = lease.machine_id;
    $("w-gpus").textContent = String(lease.gpus);
    $("w-duration").textContent =
      `${lease.duration_blocks} blocks (${M.hours(lease.duration_blocks, chainInfo)} h)`;
    $("w-price").textContent =
      `${M.priceText(lease.price_per_gpu_block, chainInfo)} (${M.blockPriceText(lease.price_per_gpu_block, chainInfo)})`;
    $("w-escrow").textContent = M.money(lease.escrow, chainInfo);
    $("w-spent").textContent = M.money(lease.spent, chainInfo);
    $("w-refunded").textContent = M.money(lease.refunded, chainInfo);
    const conn = lease.connection || {};
    $("w-ports").textContent =
      (conn.ports || []).map((p) => `${p.container_port} → ${conn.host}:${p.host_port}`).join(", ") || "none";
    const ssh = lease.state === "running" ? M.sshCommand(lease) : null;
    $("w-ssh").hidden = ssh === null;
    if (ssh !== null && $("w-ssh-command").value !== ssh) {
      $("w-ssh-command").value = ssh;
      if (watched && watched.createdAt !== null) {
        const seconds = (performance.now() - watched.createdAt) / 1000;
        $("w-ssh-ready").textContent = `SSH ready ${seconds.toFixed(1)} s after the lease was requested.`;
        $("w-ssh-ready").dataset.seconds = seconds.toFixed(3);
        watched.createdAt = null;
      }
    }
    const ended = lease.state === "ended";
    $("extend-form").hidden = ended;
    $("w-terminate").hidden = ended;
  }

  async function poll() {
    if (watched === null) return;
    const current = watched;
    let lease = null;
    try {
      lease = await api("GET", `/leases/${current.leaseId}`);
      if (watched !== current) return;
      if (current.failed) $("error").hidden = true; // the last poll's error has passed
      current.failed = false;
      showLease(lease);
      if (lease.state !== current.state) {
        current.state = lease.state; // the list shows it too
        refreshLeases().catch(showError);
      }
    } catch (error) {
      if (watched !== current) return;
      current.failed = true;
      showError(error); // keep watching: a 503 while the chain is busy passes
    }
    if (lease && lease.state === "ended") {
      stopWatching();
      notice(`Lease ${lease.lease_id} ended (${lease.end_reason || "done"}); refunded ${M.money(lease.refunded, info)}.`);
      await Promise.all([refreshLeases(), refreshAccount()]).catch(showError);
      return;
    }
    const ready = lease && lease.state === "running" && M.sshCommand(lease) !== null;
    clearTimeout(current.timer);
    current.timer = setTimeout(poll, ready ? POLL_RUNNING_MS : POLL_STARTING_MS);
  }

  async function watch(leaseId, createdAt = null) {
    stopWatching();
    await chain();
    watched = { leaseId, timer: null, createdAt, state: null, failed: false };
    $("watch").dataset.leaseId = String(leaseId);
    $("w-ssh-command").value = "";
    $("w-ssh-ready").textContent = "";
    $("watch").hidden = false;
    $("w-id").textContent = String(leaseId);
    $("watch-title").focus();
    await poll();
  }

  onSubmit("extend-form", async (form) => {
    const chainInfo = await chain();
    const blocks = M.hoursToBlocks(form.elements.hours.value, chainInfo);
    const lease = await api("POST", `/leases/${$("watch").dataset.leaseId}/extend`, {
      body: { extra_blocks: Number(blocks) },
    });
    showLease(lease);
    notice(`Lease ${lease.lease_id} extended by ${blocks} blocks; now ${lease.duration_blocks} blocks.`);
    await refreshAccount();
  });

  $("w-terminate").addEventListener("click", (event) =>
    guarded(event.currentTarget, async () => {
      const leaseId = $("watch").dataset.leaseId;
      if (!window.confirm(`Terminate lease ${leaseId}? What accrued is paid, the rest refunded.`)) return;
      const lease = await api("POST", `/leases/${leaseId}/terminate`);
      showLease(lease);
      notice(`Lease ${leaseId} terminated: the rest of its escrow is being refunded.`);
      // Read it again now (ended: the lists and the account are refreshed), and then every
      // second until the chain's end is indexed.
      if (watched !== null) {
        clearTimeout(watched.timer);
        await poll();
      }
    }),
  );

  async function refreshLeases() {
    const [result, chainInfo] = await Promise.all([api("GET", "/leases"), chain()]);
    const body = $("leases-table").tBodies[0];
    body.replaceChildren();
    for (const lease of result.data) {
      const row = body.insertRow();
      cell(row, String(lease.lease_id), "num");
      cell(row, lease.state + (lease.end_reason ? ` (${lease.end_reason})` : ""));
      cell(row, String(lease.gpus), "num");
      cell(row, short(lease.machine_id), "mono").title = lease.machine_id;
      cell(row, M.perGpuHour(lease.price_per_gpu_block, chainInfo), "num");
      cell(row, M.money(lease.spent, chainInfo), "num");
      row.insertCell().append(button(`Open lease ${lease.lease_id}`, () => watch(lease.lease_id)));
    }
  }

  $("leases-refresh").addEventListener("click", (e) => guarded(e.currentTarget, refreshLeases));

  // -- copy buttons --------------------------------------------------------------------------------
  for (const copy of document.querySelectorAll("[data-copy]")) {
    copy.addEventListener("click", async () => {
      const field = $(copy.dataset.copy);
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        notice("Copied.");
      } catch {
        notice("Selected: press Ctrl+C to copy."); // no clipboard permission (plain http)
      }
    });
  }

  // -- start -------------------------------------------------------------------------------------
  async function start() {
    chain().catch(showError);
    if (signedIn()) {
      try {
        await signIn(sessionStorage.getItem(KEY));
      } catch (error) {
        showSignedOut();
        showError(error);
      }
    } else {
      showSignedOut();
    }
  }

  start();
})();
