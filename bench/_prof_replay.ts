import { buildRecord, replayRun } from './replay.js'
const rec = buildRecord(1_000_000)
for (let i = 0; i < 2; i++) { const r = await replayRun(rec); console.log(JSON.stringify(r)) }
rec.done()
