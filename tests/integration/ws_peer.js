// tests/integration/ws_peer.js — a WebSocket client on npm's `ws`, for
// test_websocket.py (an interop peer, not a secirc program). One line per
// event on stdout; bounded: it gives up after 15 s.
//
//   node ws_peer.js garbage URL   opens URL offering the subprotocol
//                                 secirc.v1 (ws checks Sec-WebSocket-Accept
//                                 itself), sends 1000 random bytes in one
//                                 binary message, prints what comes back
//                                 until the server closes
//
// Lines: "OPEN protocol=P", "MESSAGE len=N", "CLOSE code=N",
// "ERROR text", "TIMEOUT". `ws` must be resolvable (NODE_PATH).
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');

const [, , mode, url] = process.argv;
const say = (line) => process.stdout.write(line + '\n');
const timer = setTimeout(() => { say('TIMEOUT'); process.exit(2); }, 15000);

if (mode !== 'garbage' || !url) {
  say('ERROR usage: node ws_peer.js garbage URL');
  process.exit(2);
}
const ws = new WebSocket(url, ['secirc.v1'], { perMessageDeflate: false });
ws.on('open', () => {
  say(`OPEN protocol=${ws.protocol || '-'}`);
  ws.send(crypto.randomBytes(1000), { binary: true });
});
ws.on('message', (data, isBinary) => say(`MESSAGE len=${data.length} binary=${isBinary}`));
ws.on('error', (err) => say(`ERROR ${err.message}`));
ws.on('close', (code) => {
  say(`CLOSE code=${code}`);
  clearTimeout(timer);
  process.exit(0);
});
