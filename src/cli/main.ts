/**
 * The `raiment` command line. `main(argv)` parses the arguments, runs one command and resolves
 * to the exit code; it never calls process.exit, except on a second SIGINT while closing, for a
 * fenced weave, and once a telemetry flush was given up on (an exporter's own timer would hold
 * the process: src/cli/telemetry-flush.ts).
 *
 * Every failure is one line on stderr, `raiment: CODE: <what is wrong and what to do>`, with
 * exit 1 (2 for a usage error, code RAIMENT_USAGE); RAIMENT_DEBUG=1 adds the stack. A reader
 * that closes stdout early (`raiment ps | head -1`) ends the output quietly.
 */
import { Command, CommanderError, Option } from 'commander'
import { readFileSync } from 'node:fs'
import { DURABILITIES } from '../journal.js'
import { DEFAULT_DB, DEFAULT_IO_LIBS, DEFAULT_THREADS, errorLine, note, quietPipes, redactUrls } from './common.js'
import type { DumpOptions, LogsOptions, PsOptions, ShowOptions } from './inspect.js'
import type { DeadLettersOptions } from './dead-letters.js'
import type { ReplayCommandOptions } from './replay.js'
import type { CheckCommandOptions } from './check.js'
import type { ForkCommandOptions } from './fork.js'
import type { StartOptions } from './weave-commands.js'
import type { SpawnOptions } from './spawn.js'
import type { DbOptions } from './common.js'
import type { WeavesOptions } from './amqp-commands.js'
import type { MigrateOptions } from './migrate.js'
import type { RestoreOptions } from './replication-commands.js'
import { scheduleCommands } from './schedule-cli.js'
import type { UiCommandOptions } from './ui.js'

// Each command's module is loaded only when it runs, so `ps` does not pay for loading a weave.
const inspect = () => import('./inspect.js')
const weaveCommands = () => import('./weave-commands.js')
const messageCommands = () => import('./messages.js')

/** Runs the CLI with `argv` (without `node` and the script) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  quietPipes()
  let code = 0
  const program = build((c) => (code = c), argv)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return code
  } catch (e) {
    // Commander has already printed its message (or the help) through outputError.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2
    report(e)
    return 1
  }
}

function report(e: unknown): void {
  note(errorLine(e))
  if (process.env.RAIMENT_DEBUG === '1' && e instanceof Error && e.stack) note(redactUrls(e.stack))
}

export type Action = (...args: never[]) => number | Promise<number>

function build(setCode: (c: number) => void, argv: readonly string[]): Command {
  const program = new Command('raiment')
  program
    .description('Durable threads whose every I/O call is journaled in SQLite.')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`raiment: RAIMENT_USAGE: ${redactUrls(str.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' '))} (see --help)\n`),
    })
    .addHelpText('after', "\nRun 'raiment <command> --help' for a command's options and an example.")

  const run =
    (fn: Action) =>
    async (...args: unknown[]): Promise<void> => {
      setCode(await (fn as (...a: unknown[]) => number | Promise<number>)(...args))
    }

  const db = (c: Command): Command => c.option('--db <file>', 'the journal file', DEFAULT_DB)
  const project = (c: Command): Command =>
    db(c)
      .option('--threads <dir>', 'directory of thread types', DEFAULT_THREADS)
      .option('--io-libs <dir>', "directory of the project's I/O libraries", DEFAULT_IO_LIBS)
  /** `--timeout` of a command that asks the weave running on the journal (src/cli/ask-weave.ts). */
  const asks = (c: Command, wait = '5s'): Command =>
    c.option('--timeout <duration>', `how long to wait for the weave running on the journal to take the request (500ms, 30s, 2m; a number alone is ms); default ${wait}`)
  const weaveOptions = (c: Command): Command =>
    project(c)
      .addOption(new Option('--durability <mode>', 'sync: fsync per commit; batched: WAL, synchronous=NORMAL; memory: no fsync; replicated: sync, and outcomes wait for the broker (--replicate)').choices(DURABILITIES).default('sync'))
      .option('--dumps <dir>', 'where dumps of failed threads are written', 'dumps')
      .addOption(new Option('--on-divergence <what>', 'a resumed thread whose code changed: fail it, continue live, or wait (nothing recorded) for code that replays it').choices(['fail', 'continue', 'wait']).default('fail'))
      .option('--secret <lib.kind=value>', 'also secret in the calls of LIB (repeatable): fetch.headers=x-api-key, fetch.body=card.number; see docs/secrets.md', (v: string, all: string[] | undefined) => [...(all ?? []), v])

  weaveOptions(program.command('start'))
    .description('Run a weave in the foreground: resume what was running, run what is spawned. SIGINT/SIGTERM stop it cleanly.')
    .option('--amqp <url>', 'join the weaves on this RabbitMQ broker (default: $RAIMENT_AMQP_URL; none: no network at all)')
    .option('--id <weave>', "this weave's id, the prefix of its thread ids (default: host name and db file name)")
    .option('--namespace <ns>', 'prefix of the queues and exchanges, so clusters can share a broker', 'raiment')
    .option('--heartbeat <ms>', 'how often the weave announces itself to the others', '1000')
    .option('--batch <n>', 'at most N messages for one weave in one AMQP message (default 250); 1 while weaves of a Raiment without batches are in the namespace')
    .option('--weaves <n>', 'run N weave processes here (<db>-1.db …), restarting any that dies; needs --amqp')
    .option('--module-schedules-on <weave>', "with several weaves loading the same threads: the one weave that fires the schedules their modules declare (the others drop theirs); --weaves sets it to its first weave")
    .option('--replicate', "copy every commit of the journal to its RabbitMQ stream (needs --amqp); with --durability replicated, outcomes wait for the broker's copy")
    .option('--no-replicate', "start a journal its last weave replicated without replicating it (else refused, RAIMENT_REPLICATION_REQUIRED: it may have been taken over; check 'raiment weaves' first)")
    .option('--takeover-after <ms>', 'with --replicate: a replicated weave silent this long is taken over by a live one (default 10000)')
    .option('--stop-wait <duration>', 'on SIGINT/SIGTERM, how long the calls in flight may finish and be recorded before the weave closes (those still in flight run again at the next start): 0, 500ms, 10s (default 10s; a bare number is ms)')
    .option('--max-message-bytes <bytes>', "the largest message a send takes, as it travels: a bigger one is refused (MessageTooLarge); keep it within the broker's max_message_size: 1048576, 64MiB (default 16MiB)")
    .option('--passivate-after <duration>', 'a thread waiting this long in receive, sleep or a join leaves memory until what it waits for comes: 0, 500ms, 30s, 5m, or never (default 30s)')
    .option('--watch', 'reload thread files as they change (as raiment reload and SIGHUP do): new spawns run the new code, running threads move to it where their record replays')
    .addOption(new Option('--log-format <format>', "the weave's log lines: pretty (one human line each) or json (one JSON object per line, through pino; the log library's lines too)").choices(['pretty', 'json']).default('pretty'))
    .addHelpText('after', '\nExamples:\n  raiment start --db app.db --threads threads\n  raiment start --amqp amqp://guest:guest@127.0.0.1:5672 --id orders-1\n  raiment start --amqp amqp://guest:guest@127.0.0.1:5672 --weaves 3')
    .action(run(async (o: StartOptions) => (await weaveCommands()).start(o, argv.slice(argv.indexOf('start') + 1))))

  program
    .command('weaves')
    .description('List the live weaves on a broker (id, host, pid, thread count, last heartbeat), then those that are not live: stopped cleanly or silent, since when, and the messages waiting for them.')
    .option('--amqp <url>', 'the broker (default: $RAIMENT_AMQP_URL)')
    .option('--namespace <ns>', 'the namespace the weaves joined', 'raiment')
    .option('--json', 'print JSON instead of a table')
    .option('--forget <weave>', 'a weave retired for good: delete its queue, so it is listed no more (refused for a live weave, and while messages wait in it)')
    .option('--force', 'with --forget: delete its queue with the messages waiting in it')
    .addHelpText('after', '\nExamples:\n  raiment weaves --amqp amqp://guest:guest@127.0.0.1:5672\n  raiment weaves --amqp amqp://guest:guest@127.0.0.1:5672 --forget orders-9')
    .action(run(async (o: WeavesOptions) => (await import('./amqp-commands.js')).weaves(o)))

  program
    .command('restore')
    .description("Rebuild a journal file from its RabbitMQ stream (a weave started with --replicate): backup and restore, without a takeover.")
    .requiredOption('--from <weave>', 'the weave id whose journal to rebuild')
    .requiredOption('--db <file>', 'the journal file to write (must not exist)')
    .option('--amqp <url>', 'the broker (default: $RAIMENT_AMQP_URL)')
    .option('--namespace <ns>', 'the namespace the weave joined', 'raiment')
    .addHelpText('after', '\nLive threads come back with their whole journals; ended threads with their end, result or error (their journals are not kept in the stream).\n\nExample:\n  raiment restore --from orders-1 --db orders-1.db --amqp amqp://guest:guest@127.0.0.1:5672')
    .action(run(async (o: RestoreOptions) => (await import('./replication-commands.js')).restore(o)))

  asks(weaveOptions(program.command('spawn')))
    .description('Record a new thread; a weave running on the journal picks it up within 100 ms.')
    .argument('<type>', "the thread type's name (its path in the threads directory without extension)")
    .argument('[params_json]', "the thread's params as JSON ('-': read them from stdin)")
    .option('-w, --wait', 'wait for the thread to end and print its result (or error); runs a weave here if none is running')
    .option('--json', "print the thread's whole record as JSON (with --wait, once it has ended)")
    .option('--key <key>', 'spawn once per key (a request or order key): the thread is <weave>/<key>; the same key again, with the same type and params, prints that thread and records nothing')
    .addHelpText('after', `\nExamples:\n  raiment spawn greet '{"name":"ada"}'\n  raiment spawn greet '{"name":"ada"}' --wait\n  raiment spawn greet '{"name":"ada"}' --wait --json\n  raiment spawn order '{"cart":7}' --key order-7`)
    .action(run(async (type: string, params: string | undefined, o: SpawnOptions) => (await import('./spawn.js')).spawn(type, params, o)))

  db(program.command('ps'))
    .description('List threads: id, type, status, age, number of journaled calls.')
    .option('--status <status>', 'only these statuses (pending, running, passivated, done, failed, killed; comma-separated; running includes passivated)')
    .option('--type <type>', 'only threads of this type')
    .option('--tree', 'show children indented under their parents')
    .option('-n, --limit <n>', 'only the newest N threads (of those that match)')
    .option('--json', 'print the threads as a JSON array of whole records (params, result, error…)')
    .addHelpText('after', '\nExamples:\n  raiment ps --status running,pending\n  raiment ps --tree\n  raiment ps --limit 10 --json')
    .action(run(async (o: PsOptions) => (await inspect()).ps(o)))

  db(program.command('show'))
    .description("Show a thread's journal as a timeline: seq, call, args, outcome, duration, ok/err.")
    .argument('<id>', 'the thread id (see raiment ps)')
    .option('--full', 'show values whole instead of cut to the width of a column')
    .option('--json', 'print {thread, calls, mailbox, waiting} as JSON, every value whole')
    .addHelpText(
      'after',
      "\nTimes are ISO 8601 in UTC. VIA names the Raiment helper that made a call for the thread (mailbox.receive is made of\nmailbox.now, take, peek and takeNumber calls); it is blank for the calls the thread's own code made.\nA running thread in memory: the weave on the journal is asked what it waits for (a second at most).\n\nExamples:\n  raiment show myhost-raiment/1\n  raiment show myhost-raiment/1 --json",
    )
    .action(run(async (id: string, o: ShowOptions) => (await inspect()).show(id, o)))

  db(program.command('logs'))
    .description("Print a thread's log lines (its log.debug/info/warn/error calls) from its record, with when each was made.")
    .argument('<id>', 'the thread id (see raiment ps)')
    .option('--json', 'print one JSON object a line: {seq, at, level, message, fields}')
    .addHelpText('after', '\nRead-only: safe beside a running weave. A line below the weave\'s level was recorded too, and is printed.\n\nExamples:\n  raiment logs myhost-raiment/1\n  raiment logs myhost-raiment/1 --json')
    .action(run(async (id: string, o: LogsOptions) => (await inspect()).logs(id, o)))

  project(program.command('dump'))
    .description("Write a thread's dump (its spawn record and journal, superjson) to stdout or a file.")
    .argument('<id>', 'the thread id (see raiment ps)')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .addHelpText('after', '\nExample:\n  raiment dump myhost-raiment/1 -o greet.json')
    .action(run(async (id: string, o: DumpOptions) => (await inspect()).dump(id, o)))

  program
    .command('replay')
    .description('Re-run a dump strictly (no I/O library is called): print the result, the error it reproduces, or the divergence.')
    .argument('<file>', 'a dump file (from raiment dump, or dumps/ after a failure)')
    .option('--threads <dir>', 'directory of thread types', DEFAULT_THREADS)
    .option('--io-libs <dir>', "directory of the project's I/O libraries", DEFAULT_IO_LIBS)
    .addHelpText('after', '\nExit status: 0 when the replay ends as the recording did, 1 otherwise.\n\nExample:\n  raiment replay greet.json')
    .action(run(async (file: string, o: ReplayCommandOptions) => (await import('./replay.js')).replayCommand(file, o)))

  project(program.command('check'))
    .description('Replay every unfinished thread of the journal strictly under the thread types on disk now (no I/O library is called, nothing is written): compatible, diverges at entry K, or does not load.')
    .option('--ended <n>', 'also check the N threads that ended last')
    .option('--json', 'print the report as JSON: every thread, the summary per type, the changes (patch.patched)')
    .addHelpText(
      'after',
      '\nExit status: 0 when every thread replays and every thread type loads, 1 otherwise. Safe beside a running weave,\nand on a copy of a production journal.\n\nExamples:\n  raiment check --db raiment.db --threads threads\n  raiment check --db prod-copy.db --ended 100 --json',
    )
    .action(run(async (o: CheckCommandOptions) => (await import('./check.js')).check(o)))

  asks(project(program.command('fork')))
    .description("Fork a thread: a new thread replays ID's record up to entry SEQ, with the outcomes given replaced, then runs live; ID stays as it is.")
    .argument('<id>', 'the thread to fork (see raiment ps)')
    .option('--at <seq>', 'the first entry not replayed: it and what follows run live (default: after the whole record)')
    .option('--set <seq=json...>', 'replace the outcome of entry SEQ (before --at) with this JSON value; repeatable')
    .addHelpText(
      'after',
      "\nThe fork's live calls carry call ids of their own. With a weave running on the journal, that weave runs the fork;\nwith none, it is recorded and starts when one does. Prints the fork's id.\n\nExamples:\n  raiment fork myhost-raiment/7 --at 3\n  raiment fork myhost-raiment/7 --at 3 --set 2='{\"stock\":5}'",
    )
    .action(run(async (id: string, o: ForkCommandOptions) => (await import('./fork.js')).fork(id, o)))

  asks(db(program.command('reload')))
    .description('Make the weave running on the journal load its changed thread files (as SIGHUP does): new spawns run the new code; each running thread of a changed type moves to it if its record replays under it, else keeps its code.')
    .addHelpText('after', '\nPrints what moved and what was kept; exit 1 when a changed file failed to load (the running code is unchanged).\n\nExample:\n  raiment reload --db raiment.db')
    .action(run(async (o: DbOptions) => (await import('./reload.js')).reloadCommand(o)))

  asks(db(program.command('kill')))
    .description('Kill a thread: its pending and later I/O calls fail with ThreadKilled.')
    .argument('<id>', 'the thread id (see raiment ps)')
    .addHelpText('after', '\nExample:\n  raiment kill myhost-raiment/3')
    .action(run(async (id: string, o: DbOptions) => (await weaveCommands()).kill(id, o)))

  asks(db(program.command('cancel')))
    .description('Cancel a thread so that it can clean up: the call it waits on (or else its next) throws ThreadCancelled, and its later calls run (a kill makes none).')
    .argument('<id>', 'the thread id (see raiment ps)')
    .option('--reason <text>', 'why, in the ThreadCancelled the thread gets', 'cancelled')
    .addHelpText('after', '\nExample:\n  raiment cancel myhost-raiment/3 --reason "the customer asked"')
    .action(run(async (id: string, o: DbOptions & { reason?: string }) => (await import('./cancel.js')).cancel(id, o)))

  asks(db(program.command('migrate')), '15s')
    .description('Move a running thread to another weave of the broker namespace: it resumes there by replay under the same id; messages sent to it here are forwarded.')
    .argument('<id>', 'the thread id (see raiment ps)')
    .requiredOption('--to <weave>', 'the weave to move it to (see raiment weaves)')
    .addHelpText('after', '\nThe weave running on the journal does the move; it must have been started with --amqp.\n\nExample:\n  raiment migrate orders-1/17 --to orders-2 --db orders-1.db')
    .action(run(async (id: string, o: MigrateOptions) => (await import('./migrate.js')).migrate(id, o)))

  asks(db(program.command('send')))
    .description('Send a message (JSON) to a thread, by id or registered name. A message for a thread that has ended or does not exist goes to the dead letters.')
    .argument('<id_or_name>', 'a thread id (see raiment ps) or a name a thread registered')
    .argument('<message_json>', "the message as JSON ('-': read it from stdin)")
    .option('--key <key>', 'an idempotency key (1 to 200 characters): the message reaches the thread once per key, however often it is sent with it, for 24 hours; a send again prints the first result with "duplicate":true')
    .addHelpText(
      'after',
      '\nWith a weave running on the journal, the weave delivers the message and this prints its answer;\n' +
        "with none, the message goes into the thread's inbox and waits there until a weave runs it.\n" +
        'Either way it prints the result as JSON: {"delivered":true,"to":ID}, or\n{"delivered":false,"to":…,"reason":…}.' +
        '\n\nExit status: 0 when delivered (or sent before with that --key), 1 when the message went to the dead letters here. For a thread of another weave, delivered means sent to that weave ("sentToWeave"), which dead-letters it there if the thread has ended or does not exist.' +
        `\n\nExamples:\n  raiment send myhost-raiment/3 '{"hello":"world"}'\n  raiment send ear '"hi"'\n  raiment send orders '{"pay":7}' --key req-7f3a`,
    )
    .action(run(async (to: string, message: string, o: DbOptions & { key?: string }) => (await messageCommands()).send(to, message, o)))

  asks(db(program.command('dead-letters')))
    .description('List messages that could not be delivered (oldest first): their number N, when, sender, recipient, why, and the message; or send one again, or drop some.')
    .option('-n, --limit <n>', 'show the last N (default 20; with --json, every one)')
    .option('--json', 'print them as a JSON array, each message whole')
    .option('--resend <N...>', "send these dead letters again ('all': every one), each from its sender to its recipient (or --to), oldest first; each leaves the dead letters")
    .option('--to <id-or-name>', 'with --resend: send them to this thread id or registered name instead')
    .option('--drop <N...>', "drop these dead letters ('all': every one)")
    .addHelpText(
      'after',
      '\nWith a weave running on the journal, it sends or drops them; with none, this process does.' +
        '\n\nExit status of --resend: 0 when delivered, 1 when one went to the dead letters again (under a new N).' +
        '\n\nExamples:\n  raiment dead-letters --limit 50\n  raiment dead-letters --json\n  raiment dead-letters --resend 7 --to ear\n  raiment dead-letters --resend all --to worker\n  raiment dead-letters --drop 3 4 5\n  raiment dead-letters --drop all',
    )
    .action(run(async (o: DeadLettersOptions) => (await import('./dead-letters.js')).deadLetters(o)))

  scheduleCommands(program, (c) => asks(db(c)), run)

  program
    .command('ui')
    .description('Serve a web UI on 127.0.0.1: threads, a thread\'s timeline, messages and children, weaves, dead letters; it updates live. Prints its URL and a token that kill and send need.')
    .option('--db <file>', 'a journal file to show (repeat for several; default raiment.db)', (v: string, all: string[] | undefined) => [...(all ?? []), v])
    .option('--amqp <url>', 'also show the live weaves of this broker (default: $RAIMENT_AMQP_URL)')
    .option('--namespace <ns>', 'the namespace the weaves joined', 'raiment')
    .option('--port <n>', 'the port (default: a free one)')
    .option('--threads <dir>', "directory of thread types (a dump of a value of a class the project registers imports them)", DEFAULT_THREADS)
    .option('--io-libs <dir>', "directory of the project's I/O libraries (the same)", DEFAULT_IO_LIBS)
    .addHelpText('after', '\nThe journals are read read-only, beside a running weave or with none; nothing changes them but kill and send,\nwhich need the token.\n\nExamples:\n  raiment ui\n  raiment ui --db a.db --db b.db --port 8080\n  raiment ui --amqp amqp://guest:guest@127.0.0.1:5672')
    .action(run(async (o: UiCommandOptions) => (await import('./ui.js')).ui(o)))

  program
    .command('init')
    .description('Make DIR (default: here) a Raiment project: package.json (written or completed), tsconfig.json, eslint.config.js, a thread type threads/greet.ts, an I/O library io-libs/greeting.ts, a replay test test/greet.test.ts and its fixture fixtures/greet-ada.json, and README.md and .gitignore where there are none; it overwrites nothing, and a failed init leaves nothing.')
    .argument('[dir]', 'the project directory (made if missing; not a file)')
    .option('--type-module', 'set "type": "module" even though the .js files there would then load as ES modules (without it, init refuses)')
    .addHelpText('after', '\nThen: npm install && npm test\n\nExamples:\n  npx raiment init\n  npx raiment init my-app')
    .action(run(async (dir: string | undefined, o: { typeModule?: boolean }) => (await import('./init.js')).init(dir, o)))

  weaveOptions(program.command('demo'))
    .description('Run the example threads on ./raiment.db and print their progress and results; run it again after a SIGKILL and it resumes.')
    .addHelpText('after', '\nExample:\n  raiment demo')
    .action(run(async (o: StartOptions) => (await import('./demo.js')).demo(o)))

  return program
}

function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'raiment' && pkg.version) return pkg.version
    } catch {
      // not there: try the next place
    }
  }
  return 'unknown'
}
