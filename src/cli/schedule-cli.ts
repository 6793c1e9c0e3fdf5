/**
 * The `raiment schedule` commands' command line (their module, src/cli/schedule-commands.ts, is
 * loaded only when one runs).
 */
import { type Command, Option } from 'commander'
import { DEFAULT_THREADS, type DbOptions } from './common.js'
import type { Action } from './main.js'
import type { ScheduleAddOptions, ScheduleLsOptions } from './schedule-commands.js'

/** `raiment schedule add|ls|rm|pause|resume` (src/cli/schedule-commands.ts). */
export function scheduleCommands(program: Command, db: (c: Command) => Command, run: (fn: Action) => (...args: unknown[]) => Promise<void>): void {
  const commands = () => import('./schedule-commands.js')
  const schedule = program
    .command('schedule')
    .description('Schedules: a weave spawns a thread of a type at each time of a cron expression, exactly once per time.')
    .addHelpText(
      'after',
      '\nOptions of schedule add: --cron <expr>, --missed <policy> (skip, once, all), --tz <zone>, --db <file>, --threads <dir>;' +
        '\nof schedule ls: --json, --db <file>; of rm, pause and resume: --db <file>.' +
        `\n\nExamples:\n  raiment schedule add cleanup --cron "*/5 * * * *" cleanup '{"older_than_days":7}'\n  raiment schedule ls\n  raiment schedule pause cleanup`,
    )
  db(schedule.command('add'))
    .description('Add a schedule: at each time of --cron, the weave on the journal spawns TYPE with PARAMS_JSON and scheduledAt (ISO 8601).')
    .argument('<name>', "the schedule's name: letters, digits, '_', '.', '-'")
    .argument('<type>', 'the thread type to spawn at each time')
    .argument('[params_json]', "the threads' params, a JSON object (scheduledAt is added)")
    .requiredOption('--cron <expr>', 'a cron expression: 5 fields (minute precision), 6 (seconds first) or 7 (years last)')
    .addOption(new Option('--missed <policy>', 'the times that passed while no weave ran: skip them, run once (the latest), or run all').choices(['skip', 'once', 'all']).default('skip'))
    .option('--tz <zone>', 'the IANA time zone the expression is read in', 'UTC')
    .option('--threads <dir>', 'directory of thread types (to check TYPE when no weave runs)', DEFAULT_THREADS)
    .addHelpText('after', `\nExamples:\n  raiment schedule add cleanup --cron "*/5 * * * *" cleanup '{"older_than_days":7}'\n  raiment schedule add report --cron "0 9 * * MON-FRI" --tz Europe/Paris --missed once report`)
    .action(run(async (name: string, type: string, params: string | undefined, o: ScheduleAddOptions) => (await commands()).add(name, type, params, o)))
  db(schedule.command('ls'))
    .description('List the schedules: type, cron, time zone, missed-times policy, paused, next time, last fired time and thread.')
    .option('--json', 'print them as a JSON array')
    .action(run(async (o: ScheduleLsOptions) => (await commands()).ls(o)))
  for (const [op, what] of [
    ['rm', 'Remove a schedule (the threads it spawned run on).'],
    ['pause', 'Pause a schedule: the times that pass while it is paused are not fired.'],
    ['resume', 'Resume a paused schedule, from now.'],
  ] as const) {
    db(schedule.command(op))
      .description(what)
      .argument('<name>', "the schedule's name (see raiment schedule ls)")
      .action(run(async (name: string, o: DbOptions) => (await commands()).change(op, name, o)))
  }
}
