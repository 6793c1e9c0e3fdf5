/**
 * inventory: several kinds of I/O at once. It writes one file per item and upserts one row per
 * item into an SQLite database, concurrently (`Promise.all`), then reads both back together
 * with the clock. Every write is idempotent (overwrite, upsert), so the result is the same
 * whether the thread ran once or was resumed after a crash.
 */
import { thread } from 'raiment'

export default thread({
  uses: ['clock', 'fs', 'log', 'random', 'sqlite'],
  async does(params: { dir: string; items: Record<string, number> }) {
    const { dir, items } = params
    const db = `${dir}/stock.db`
    const names = Object.keys(items).sort()
    const [started, batch] = await Promise.all([
      this.clock.now(),
      this.random.uuid(),
      this.fs.mkdir(dir, { recursive: true }),
      this.log.info(`counting ${names.length} items`, { dir }),
    ])
    await this.sqlite.run(db, 'CREATE TABLE IF NOT EXISTS stock (item TEXT PRIMARY KEY, qty INTEGER NOT NULL)')
    await Promise.all([
      ...names.map((n) => this.fs.writeFile(`${dir}/${n}.txt`, `${n}: ${items[n]}\n`)),
      ...names.map((n) =>
        this.sqlite.run(db, 'INSERT INTO stock (item, qty) VALUES (?, ?) ON CONFLICT (item) DO UPDATE SET qty = excluded.qty', [n, items[n]!]),
      ),
    ])
    await this.clock.sleep(500)
    const [files, rows, texts, ended] = await Promise.all([
      this.fs.readdir(dir),
      this.sqlite.query(db, 'SELECT item, qty FROM stock WHERE item IN (SELECT value FROM json_each(?)) ORDER BY item', [JSON.stringify(names)]),
      Promise.all(names.map((n) => this.fs.readFile(`${dir}/${n}.txt`))),
      this.clock.now(),
    ])
    await this.log.info('counted', { batch, ms: ended - started })
    return {
      files: files.filter((f) => f.endsWith('.txt')).sort(),
      lines: texts.map((t) => t.trim()),
      total: rows.reduce((sum, r) => sum + Number(r.qty), 0),
    }
  },
})
