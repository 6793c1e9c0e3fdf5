/**
 * Watching a directory tree for `raiment start --watch`: every directory under it (but
 * node_modules and dot-directories, which the loader skips too) is watched by itself, not its
 * files. A watch on a file follows its inode, so a file replaced by a rename (`sed -i`, an
 * editor's atomic save) went unseen from then on; and Node's `recursive` watch on Linux watches
 * each file. A directory's watch sees every write, creation, removal and rename in it.
 */
import { readdirSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'

/** The directories of the tree at `root`, `root` first; one that vanishes as it is read is left out. */
function directories(root: string): string[] {
  const out = [root]
  for (let i = 0; i < out.length; i++) {
    let entries
    try {
      entries = readdirSync(out[i]!, { withFileTypes: true })
    } catch {
      continue
    }
    for (const e of entries) if (e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.')) out.push(join(out[i]!, e.name))
  }
  return out
}

/**
 * Calls `changed` on every change under `root` (undebounced: as the events come). A directory
 * made or renamed under it is watched from its next event on; one removed is let go.
 * Returns the stop.
 */
export function watchTree(root: string, changed: () => void): () => void {
  // Every directory of the tree is watched, by path.
  const watchers = new Map<string, FSWatcher>()
  const rescan = (): void => {
    const now = new Set(directories(root))
    for (const [dir, w] of watchers) {
      if (!now.has(dir)) {
        w.close()
        watchers.delete(dir)
      }
    }
    for (const dir of now) {
      if (watchers.has(dir)) continue
      try {
        const w = watch(dir, (event) => {
          // A rename in a directory may be a directory made, moved or removed.
          if (event === 'rename') rescan()
          changed()
        })
        // A directory removed under its watch: let it go (the rescan of its parent's event does too).
        w.on('error', () => {
          w.close()
          if (watchers.get(dir) === w) watchers.delete(dir)
        })
        watchers.set(dir, w)
      } catch {
        // Gone between the listing and the watch.
      }
    }
  }
  rescan()
  return () => {
    for (const w of watchers.values()) w.close()
    watchers.clear()
  }
}
