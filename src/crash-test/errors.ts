/** The error of crashTest() (raiment/testing): a RaimentError with a stable code. */
import { RaimentError } from '../errors.js'
import type { CrashRun, CrashTestReport } from './crash-test.js'

/**
 * A crash test found runs that, crashed at a point and resumed, ended otherwise than the run with
 * no crash (`mismatches`, each with its point, its count and both ends; `report` is the whole
 * report), or it could not run the thread at all (no report: the message says why).
 */
export class CrashTestFailed extends RaimentError {
  readonly mismatches: readonly CrashRun[]
  readonly report: CrashTestReport | undefined
  constructor(message: string, report?: CrashTestReport) {
    super('RAIMENT_CRASH_TEST_FAILED', message)
    this.report = report
    this.mismatches = report?.mismatches ?? []
  }
}
