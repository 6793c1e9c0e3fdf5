// DBOS Transact on the local PostgreSQL, through its documented functional API (DBOS.setConfig,
// registerWorkflow, runStep, startWorkflow, launch, shutdown) with SDK defaults (pool of 10,
// fsync and synchronous_commit as PostgreSQL ships them). The system database is the bench's
// own: dropped and recreated at open, dropped at close.
import { EngineUnavailable, type Engine } from './engine.js'
import { loadDbos, loadPg, versionOf } from './deps.js'

const PG_URL = process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432'
const SYS_DB = 'raiment_bench_dbos_sys'

/** Runs `sql` on the `postgres` maintenance database; an unreachable server is EngineUnavailable. */
async function admin(sql: string): Promise<Record<string, unknown>[]> {
  const { Client } = await loadPg()
  const client = new Client({ connectionString: `${PG_URL}/postgres`, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause)
    throw new EngineUnavailable(`PostgreSQL is not reachable at ${PG_URL} (${why}); start it or set BENCH_PG_URL`, { cause })
  }
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

/** Opens DBOS on a fresh system database. */
export async function open(): Promise<Engine> {
  const version: unknown = (await admin('SHOW server_version'))[0]?.server_version
  const pgVersion = (typeof version === 'string' ? version : '?').split(' ')[0]
  await admin(`DROP DATABASE IF EXISTS ${SYS_DB} WITH (FORCE)`)

  const { DBOS } = await loadDbos()
  const steps = DBOS.registerWorkflow(async (n: number) => {
    let sum = 0
    for (let i = 0; i < n; i++) sum += await DBOS.runStep(async () => i, { name: 'step' })
    return sum
  }, { name: 'steps' })
  DBOS.setConfig({ name: 'raiment-bench', systemDatabaseUrl: `${PG_URL}/${SYS_DB}`, logLevel: 'error', applicationVersion: '1' })
  await DBOS.launch()

  return {
    label: `DBOS Transact ${versionOf('@dbos-inc/dbos-sdk')}, PostgreSQL ${pgVersion}`,
    run: (n) => steps(n),
    async start(n) {
      // startWorkflow resolves once the workflow's status row is committed.
      const handle = await DBOS.startWorkflow(steps)(n)
      return () => handle.getResult()
    },
    async close() {
      await DBOS.shutdown()
      await admin(`DROP DATABASE IF EXISTS ${SYS_DB} WITH (FORCE)`)
    },
  }
}
