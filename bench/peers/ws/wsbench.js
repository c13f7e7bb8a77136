// bench/peers/ws/wsbench.js — WebSocket peer figures with npm's `ws` on
// loopback, driven by bench/peers/ws/ws.sh. Binds 127.0.0.1 only; every run
// is bounded (the client gives up after 120 s, the server exits after
// MAXSECS).
//
//   node wsbench.js server [MAXSECS=900]        listens on 127.0.0.1, a free
//                                                port; prints "READY PORT"
//   node wsbench.js client PORT DIR SIZE COUNT  DIR = c2s | s2c | rtt
//
// c2s: client sends COUNT binary messages of SIZE bytes (respecting
//      bufferedAmount), server counts them and reports msgs/s measured from
//      its first to its COUNT-th message.
// s2c: server sends, client counts.
// rtt: COUNT sequential echo round trips of SIZE bytes (after 1000 warm-up),
//      p50/p99 in us.
// `ws` must be resolvable (ws.sh sets NODE_PATH to the node_modules it
// installed); WS_NO_BUFFER_UTIL=1 makes ws ignore its bufferutil addon.
'use strict';
const WebSocket = require('ws');

const [, , mode, arg1, dir, sizeArg, countArg] = process.argv;
const now = () => Number(process.hrtime.bigint()) / 1e9;
const HIWAT = 4 << 20;

function blast(ws, size, count, done) {
  const buf = Buffer.alloc(size, 0x61);
  let sent = 0;
  function pump() {
    while (sent < count && ws.bufferedAmount < HIWAT) {
      ws.send(buf, { binary: true });
      sent++;
    }
    if (sent < count) setImmediate(pump);
    else if (done) done();
  }
  pump();
}

function counter(count, onDone) {
  let n = 0, t0 = 0, bytes = 0;
  return (data) => {
    if (n === 0) t0 = now();
    n++;
    bytes += data.length;
    if (n === count) {
      const dt = now() - t0;
      onDone(`msgs ${n} secs ${dt.toFixed(3)} rate ${(n / dt).toFixed(0)} msg/s ` +
             `${(bytes / dt / 1e6).toFixed(1)} MB/s`);
    }
  };
}

if (mode === 'server') {
  const maxSecs = Number(arg1 || 900);
  const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate: false,
                                     maxPayload: 64 << 20 });
  wss.on('listening', () => console.log(`READY ${wss.address().port}`));
  wss.on('connection', (ws) => {
    let handler = null;
    ws.once('message', (ctl) => {
      const [d, size, count] = ctl.toString().split(' ');
      const N = Number(count), S = Number(size);
      if (d === 'c2s') {
        handler = counter(N, (r) => ws.send('RESULT server-received ' + r));
      } else if (d === 's2c') {
        blast(ws, S, N, null);
      } else if (d === 'rtt') {
        handler = (data) => ws.send(data, { binary: true });
      }
      ws.on('message', (data) => handler && handler(data));
    });
  });
  setTimeout(() => process.exit(0), maxSecs * 1e3).unref();
} else if (mode === 'client') {
  const port = Number(arg1), size = Number(sizeArg), count = Number(countArg);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false,
                                                       maxPayload: 64 << 20 });
  setTimeout(() => { console.log('TIMEOUT'); process.exit(3); }, 120e3).unref();
  ws.on('open', () => {
    ws.send(`${dir} ${size} ${count}`);
    if (dir === 'c2s') {
      ws.on('message', (d) => { console.log(`ws c2s size ${size} ${d.toString()}`); ws.close(); });
      blast(ws, size, count, null);
    } else if (dir === 's2c') {
      const h = counter(count, (r) => { console.log(`ws s2c size ${size} client-received ${r}`); ws.close(); });
      ws.on('message', h);
    } else if (dir === 'rtt') {
      const buf = Buffer.alloc(size, 0x62), lat = [];
      const warm = 1000;
      let i = 0, t0 = 0;
      ws.on('message', () => {
        if (i >= warm) lat.push(now() - t0);
        i++;
        if (i < count + warm) { t0 = now(); ws.send(buf, { binary: true }); return; }
        lat.sort((a, b) => a - b);
        const p = (q) => (lat[Math.floor(lat.length * q)] * 1e6).toFixed(1);
        console.log(`ws rtt size ${size} n ${lat.length} p50_us ${p(0.5)} p99_us ${p(0.99)}`);
        ws.close();
      });
      t0 = now();
      ws.send(buf, { binary: true });
    }
  });
  ws.on('close', () => process.exit(0));
  ws.on('error', (e) => { console.error(e.message); process.exit(1); });
} else {
  console.error('usage: see header');
  process.exit(2);
}
