import type { Linter } from 'eslint'

/** The rules that keep thread code deterministic, by name. */
export declare const rules: Linter.RulesRecord
/** The files the rules apply to by default: every module under threads/. */
export declare const THREAD_FILES: string[]
/** A flat-config block applying the rules to thread files (default: every module under threads/). */
export declare function threads(options?: { files?: string[] }): Linter.Config
