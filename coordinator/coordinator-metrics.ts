/**
 * Counters and gauges of a coordinator, rendered in the Prometheus text
 * exposition format (version 0.0.4) for `GET /metrics`.
 */
export class CoordinatorMetrics {
  roundsCompleted = 0;
  updatesAccepted = 0;
  updatesRejected = new Map<string, number>();
  protocolErrors = new Map<string, number>();
  droppedAssignments = 0;
  connectionsTotal = 0;
  /** Update payload bytes validated and folded into an aggregate, and the seconds that took. */
  aggregationBytes = 0;
  aggregationSeconds = 0;
  /** Seconds spent making accepted updates durable (SQLite). */
  persistSeconds = 0;
  roundSeconds: number[] = [];

  bump(map: Map<string, number>, code: string): void {
    map.set(code, (map.get(code) ?? 0) + 1);
  }

  /** Aggregation throughput in MB/s (10^6 bytes) of update payload, or 0 before any update. */
  get aggregationMBps(): number {
    return this.aggregationSeconds > 0 ? this.aggregationBytes / 1e6 / this.aggregationSeconds : 0;
  }

  render(gauges: Record<string, number>): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
    };
    const labelled = (m: Map<string, number>): Array<[string, number]> => [...m].map(([code, n]) => [`{code="${code}"}`, n]);
    metric('strata_rounds_completed_total', 'counter', 'Rounds aggregated into a new model version.', [['', this.roundsCompleted]]);
    metric('strata_updates_accepted_total', 'counter', 'Updates accepted into an aggregate.', [['', this.updatesAccepted]]);
    metric('strata_updates_rejected_total', 'counter', 'Updates rejected, by error code.', labelled(this.updatesRejected));
    metric('strata_protocol_errors_total', 'counter', 'Coded protocol errors answered, by code.', labelled(this.protocolErrors));
    metric('strata_assignments_dropped_total', 'counter', 'Assignments whose agent disconnected.', [['', this.droppedAssignments]]);
    metric('strata_connections_total', 'counter', 'WebSocket connections accepted.', [['', this.connectionsTotal]]);
    metric('strata_aggregation_bytes_total', 'counter', 'Update payload bytes validated and aggregated.', [['', this.aggregationBytes]]);
    metric('strata_aggregation_seconds_total', 'counter', 'Time spent validating and aggregating updates.', [['', this.aggregationSeconds]]);
    metric('strata_persist_seconds_total', 'counter', 'Time spent persisting accepted updates.', [['', this.persistSeconds]]);
    for (const [name, value] of Object.entries(gauges)) metric(`strata_${name}`, 'gauge', name.replace(/_/g, ' ') + '.', [['', value]]);
    return `${lines.join('\n')}\n`;
  }
}
