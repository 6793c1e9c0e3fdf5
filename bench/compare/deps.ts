// The anchors' packages, as far as this bench uses them.
//
// Invariant: nothing here names an anchor package in a static import or a `declare module`, so
// `tsc -p bench/compare/tsconfig.json` type-checks without bench/compare/node_modules (CI never
// installs the anchors). Each package is loaded with a dynamic `import()` of a plain string, which
// TypeScript types as `any`, and is given the narrow interface below. Keep these interfaces to
// what the bench calls, written against the versions pinned in bench/compare/package.json.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

/** `@dbos-inc/dbos-sdk` 5.3: the functional API of the `DBOS` class. */
export interface DbosModule {
  DBOS: {
    setConfig(config: { name: string; systemDatabaseUrl: string; logLevel?: string; applicationVersion?: string }): void
    launch(): Promise<void>
    shutdown(): Promise<void>
    registerWorkflow<Args extends unknown[], R>(fn: (...args: Args) => Promise<R>, config: { name: string }): (...args: Args) => Promise<R>
    runStep<R>(fn: () => Promise<R>, config: { name: string }): Promise<R>
    startWorkflow<Args extends unknown[], R>(wf: (...args: Args) => Promise<R>): (...args: Args) => Promise<{ getResult(): Promise<R> }>
  }
}

/** `pg` 8: a single client, enough to create and drop the DBOS system database. */
export interface PgModule {
  Client: new (config: { connectionString: string; connectionTimeoutMillis?: number }) => {
    connect(): Promise<void>
    query(sql: string): Promise<{ rows: Record<string, unknown>[] }>
    end(): Promise<void>
  }
}

/** The part of a Restate handler's context the bench uses. */
export interface RestateContext {
  run<T>(name: string, fn: () => Promise<T>): Promise<T>
}

/** `@restatedev/restate-sdk` 1.17: a service definition and an HTTP/2 request handler. */
export interface RestateSdkModule {
  service(def: { name: string; handlers: Record<string, (ctx: RestateContext, input: number) => Promise<number>> }): unknown
  createEndpointHandler(opts: { services: unknown[] }): (request: unknown, response: unknown) => void
}

/** Loads an anchor package installed in bench/compare/node_modules. */
async function load<T>(name: string): Promise<T> {
  const mod: unknown = await import(name)
  return mod as T
}

export const loadDbos = (): Promise<DbosModule> => load<DbosModule>('@dbos-inc/dbos-sdk')
export const loadPg = async (): Promise<PgModule> => {
  // pg is CommonJS: its classes sit on the default export.
  const mod = await load<{ default: PgModule }>('pg')
  return mod.default
}
export const loadRestateSdk = (): Promise<RestateSdkModule> => load<RestateSdkModule>('@restatedev/restate-sdk')

const require = createRequire(import.meta.url)

/** The installed version of an anchor package (several don't export their package.json). */
export function versionOf(name: string): string {
  const file = new URL(`node_modules/${name}/package.json`, import.meta.url)
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

/** Path of the restate-server binary shipped in the npm package for this platform. */
export function restateServerBinary(): string {
  return require.resolve(`@restatedev/restate-server-${process.platform}-${process.arch}/bin/restate-server`)
}
