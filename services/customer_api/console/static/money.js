// Amounts, prices and lease steps for the console: the customer CLI's rules
// (services/customer_cli/cli.py: tokens, shown, per_gpu_hour, parse_tokens, max_block_price,
// hours_to_blocks, lease_steps), written again in JavaScript because the page cannot call Python.
// tests/console/test_docs_and_rules.py runs both on the same inputs in a real browser and
// requires the same answers, so the two cannot drift apart.
// Exact arithmetic only: amounts are u128 on chain, so BigInt, never Number.
"use strict";

window.GridleaseMoney = (() => {
  const MS_PER_HOUR = 3600000n;
  const MAX_DIGITS = 60; // as the CLI: more than any u128 amount has
  const LEASE_STEPS = ["on chain", "delivered", "starting", "running", "SSH ready"];

  /** GET /v1/chain/info's answer as the CLI's ChainInfo. */
  function chainInfo(body) {
    return {
      symbol: String(body.token_symbol),
      decimals: Number(body.token_decimals),
      blockTimeMs: BigInt(body.block_time_ms),
    };
  }

  const pow10 = (n) => 10n ** BigInt(n);

  /** An integer `units` read as units * 10^-places, with thousands separators and no trailing
   * zeros (the CLI's _plain of Decimal(f"{units}E-{places}")). */
  function plain(units, places) {
    const negative = units < 0n;
    let digits = (negative ? -units : units).toString();
    if (digits.length <= places) digits = digits.padStart(places + 1, "0");
    const whole = digits.slice(0, digits.length - places).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    let text = whole;
    if (places > 0) {
      text = `${whole}.${digits.slice(digits.length - places)}`.replace(/0+$/, "").replace(/\.$/, "");
    }
    return (negative ? "-" : "") + text;
  }

  /** Python's round() of the fraction num/den (den > 0): to nearest, ties to even. */
  function roundHalfEven(num, den) {
    let floor = num / den;
    let rest = num % den;
    if (rest < 0n) {
      floor -= 1n;
      rest += den;
    }
    if (2n * rest < den) return floor;
    if (2n * rest > den) return floor + 1n;
    return floor % 2n === 0n ? floor : floor + 1n;
  }

  /** The exact rational num/den for a person: its exact decimal within `places` decimals, else
   * rounded half-even to `places` with a leading "~" (the CLI's shown). */
  function shown(num, den, places) {
    const scaled = num * pow10(places);
    if (scaled % den === 0n) return plain(scaled / den, places);
    return "~" + plain(roundHalfEven(scaled, den), places);
  }

  function tokens(amount, decimals) {
    return plain(BigInt(amount), decimals);
  }

  /** A price per GPU per block (smallest units) as tokens per GPU-hour. */
  function perGpuHour(pricePerGpuBlock, info) {
    return shown(
      BigInt(pricePerGpuBlock) * MS_PER_HOUR,
      info.blockTimeMs * pow10(info.decimals),
      info.decimals,
    );
  }

  const money = (amount, info) => `${tokens(amount, info.decimals)} ${info.symbol}`;
  const priceText = (price, info) => `${perGpuHour(price, info)} ${info.symbol}/GPU-h`;
  const blockPriceText = (price, info) => `${tokens(price, info.decimals)} ${info.symbol}/GPU-block`;

  /** Blocks as hours, to 2 decimals (the CLI's lease view). */
  function hours(blocks, info) {
    return shown(BigInt(blocks) * info.blockTimeMs, MS_PER_HOUR, 2);
  }

  /** A decimal number typed by a person ("1.5", "2", "0.25e1", "1_000") as the exact fraction
   * [num, den]; null when it is not one (Python's Decimal(text.strip().replace("_", ""))). */
  function parseDecimal(text) {
    const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(
      String(text).trim().replaceAll("_", ""),
    );
    if (!match || (match[2] === "" && (match[3] || "") === "")) return null;
    const [, sign, whole, fraction = "", exponentText = "0"] = match;
    const significant = (whole + fraction).replace(/^0+/, "");
    if (significant.length > MAX_DIGITS) return null;
    let num = BigInt(whole + fraction || "0");
    let den = pow10(fraction.length);
    const exponent = Number(exponentText);
    if (Math.abs(exponent) > 1000) return null;
    if (exponent >= 0) num *= pow10(exponent);
    else den *= pow10(-exponent);
    return [sign === "-" ? -num : num, den];
  }

  /** Tokens typed by a person as the smallest unit, exactly; throws for anything else
   * (negative, zero, not a number, finer than the smallest unit). */
  function parseTokens(text, decimals) {
    const value = parseDecimal(text);
    if (value === null) throw new Error(`not a number of tokens: ${JSON.stringify(text)}`);
    const [num, den] = value;
    const scaled = num * pow10(decimals);
    if (num <= 0n || scaled % den !== 0n) {
      throw new Error(
        `tokens must be positive with at most ${decimals} decimals: ${JSON.stringify(text)}`,
      );
    }
    return scaled / den;
  }

  function positive(text, what) {
    const value = parseDecimal(text);
    if (value === null || value[0] <= 0n) {
      throw new Error(`${what} must be a positive number: ${JSON.stringify(text)}`);
    }
    return value;
  }

  /** The highest whole price per GPU-block not above a ceiling in tokens per GPU-hour:
   * floor(ceiling * 10^decimals / blocks_per_hour). */
  function maxBlockPrice(tokensPerGpuHour, info) {
    const [num, den] = positive(tokensPerGpuHour, "the price ceiling");
    return (num * pow10(info.decimals) * info.blockTimeMs) / (den * MS_PER_HOUR); // floor: both > 0
  }

  /** Blocks that cover at least `hours` (rounded up to a whole block). */
  function hoursToBlocks(hoursText, info) {
    const [num, den] = positive(hoursText, "hours");
    const n = num * MS_PER_HOUR;
    const d = den * info.blockTimeMs;
    return (n + d - 1n) / d;
  }

  /** How many of LEASE_STEPS a lease (as the API returns it) has done, and a detail for the
   * next one (the delivery error, the node's status). */
  function leaseSteps(lease) {
    const state = lease.state;
    const delivery = lease.delivery;
    const conn = lease.connection || {};
    if (state === "running" && conn.ssh_port) return [5, ""];
    if (state === "running") return [4, String(conn.message || conn.status || "")];
    let done = ["pending", "starting", "running"].includes(state) ? 1 : 0;
    if (delivery.state === "delivered") done = 2;
    if (state === "starting") done = 3;
    let detail = "";
    if (delivery.state !== "delivered" && delivery.attempts) {
      detail = `delivery attempt ${delivery.attempts}` + (delivery.error ? `: ${delivery.error}` : "");
    } else if (state === "starting") {
      detail = String(conn.message || "");
    }
    return [done, detail];
  }

  /** The SSH command for a running lease, or null (the CLI's _ssh_command without a key). */
  function sshCommand(lease) {
    const conn = lease.connection || {};
    if (!conn.ssh_port) return null;
    return `ssh -p ${conn.ssh_port} root@${conn.host}`;
  }

  return {
    LEASE_STEPS,
    chainInfo,
    plain,
    shown,
    tokens,
    perGpuHour,
    money,
    priceText,
    blockPriceText,
    hours,
    parseDecimal,
    parseTokens,
    maxBlockPrice,
    hoursToBlocks,
    leaseSteps,
    sshCommand,
  };
})();
