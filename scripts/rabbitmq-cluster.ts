/**
 * scripts/rabbitmq-cluster.sh start|status|stop|clean|urls: the command line of the 3-node
 * cluster of scripts/rabbit-cluster.ts (see docs/cluster.md).
 */
import { clean, ClusterError, start, status, stop, urls } from './rabbit-cluster.js'

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'start':
      return start()
    case 'status':
      return status()
    case 'stop':
      return stop()
    case 'clean':
      return clean()
    case 'urls':
      console.log(urls())
      return 0
    default:
      console.error(`raiment: RAIMENT_USAGE: rabbitmq-cluster.sh takes start, status, stop, clean or urls, got ${cmd === undefined ? 'nothing' : `'${cmd}'`}`)
      return 2
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`raiment: ${e instanceof ClusterError ? e.code : 'RAIMENT_CLUSTER'}: ${e.message}`)
    process.exit(1)
  },
)
