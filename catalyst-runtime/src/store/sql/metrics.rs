//! `MetricsStore` on SQL: resource samples and roll-ups. Expanded inside `impl_sql_store!`, beside
//! its helpers.

macro_rules! sql_metrics {
    ($store:ty) => {
        /// The summary columns of a roll-up, and how they update on a re-run.
        const ROLLUP_INSERT: &str = "INSERT INTO metrics_rollups (server_id, period, start, samples, cpu_avg, \
                cpu_max, memory_avg_bytes, memory_max_bytes, disk_max_bytes, rx_bytes, tx_bytes) ";
        const ROLLUP_UPSERT: &str = " ON CONFLICT (server_id, period, start) DO UPDATE SET \
                samples = excluded.samples, cpu_avg = excluded.cpu_avg, cpu_max = excluded.cpu_max, \
                memory_avg_bytes = excluded.memory_avg_bytes, memory_max_bytes = excluded.memory_max_bytes, \
                disk_max_bytes = excluded.disk_max_bytes, rx_bytes = excluded.rx_bytes, tx_bytes = excluded.tx_bytes";

        #[async_trait]
        impl MetricsStore for $store {
            async fn append_metrics(&self, samples: &[ServerMetrics]) -> Result<u64> {
                let mut tx = self.write_tx().await?;
                let mut new = 0;
                for m in samples {
                    let done = sqlx::query(
                        "INSERT INTO server_metrics (server_id, at, cpu_percent, memory_bytes, memory_limit_bytes, \
                             rx_bytes, tx_bytes, disk_bytes) SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                             WHERE EXISTS (SELECT 1 FROM servers WHERE id = $1) ON CONFLICT (server_id, at) DO NOTHING",
                    )
                    .bind(m.server_id.0)
                    .bind(m.at)
                    .bind(m.cpu_percent)
                    .bind(to_i64(m.memory_bytes))
                    .bind(to_i64(m.memory_limit_bytes))
                    .bind(to_i64(m.rx_bytes))
                    .bind(to_i64(m.tx_bytes))
                    .bind(to_i64(m.disk_bytes))
                    .execute(&mut *tx)
                    .await;
                    new += affected(done)?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(new)
            }

            async fn list_metrics(
                &self,
                server: ServerId,
                from: Timestamp,
                to: Timestamp,
                limit: u32,
            ) -> Result<Vec<ServerMetrics>> {
                let rows = sqlx::query_as::<_, MetricsRow>(
                    "SELECT * FROM server_metrics WHERE server_id = $1 AND at >= $2 AND at < $3 ORDER BY at LIMIT $4",
                )
                .bind(server.0)
                .bind(from)
                .bind(to)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await;
                all(rows)
            }

            async fn roll_up(&self, period: Period, start: Timestamp) -> Result<u64> {
                let select = match period {
                    Period::Hour => {
                        "SELECT server_id, $1, $2, COUNT(*), AVG(cpu_percent), MAX(cpu_percent), \
                            AVG(CAST(memory_bytes AS DOUBLE PRECISION)), MAX(memory_bytes), MAX(disk_bytes), \
                            MAX(rx_bytes), MAX(tx_bytes) FROM server_metrics WHERE at >= $2 AND at < $3 \
                            GROUP BY server_id"
                    }
                    Period::Day => {
                        "SELECT server_id, $1, $2, CAST(SUM(samples) AS BIGINT), \
                            SUM(cpu_avg * samples) / CAST(SUM(samples) AS DOUBLE PRECISION), MAX(cpu_max), \
                            SUM(memory_avg_bytes * samples) / CAST(SUM(samples) AS DOUBLE PRECISION), \
                            MAX(memory_max_bytes), MAX(disk_max_bytes), MAX(rx_bytes), MAX(tx_bytes) \
                            FROM metrics_rollups WHERE period = 'hour' AND start >= $2 AND start < $3 \
                            GROUP BY server_id"
                    }
                };
                let sql = format!("{ROLLUP_INSERT}{select}{ROLLUP_UPSERT}");
                let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(period.as_str())
                    .bind(start)
                    .bind(start + period.length())
                    .execute(&self.pool)
                    .await;
                affected(done)
            }

            async fn list_rollups(
                &self,
                server: ServerId,
                period: Period,
                from: Timestamp,
                to: Timestamp,
            ) -> Result<Vec<MetricsRollup>> {
                let rows = sqlx::query_as::<_, RollupRow>(
                    "SELECT * FROM metrics_rollups WHERE server_id = $1 AND period = $2 AND start >= $3 AND start < $4 \
                         ORDER BY start",
                )
                .bind(server.0)
                .bind(period.as_str())
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await;
                all(rows)
            }

            async fn prune_metrics(
                &self,
                samples_before: Timestamp,
                hours_before: Timestamp,
                days_before: Timestamp,
            ) -> Result<u64> {
                let mut tx = self.write_tx().await?;
                let mut gone = 0;
                let samples = sqlx::query("DELETE FROM server_metrics WHERE at < $1")
                    .bind(samples_before)
                    .execute(&mut *tx)
                    .await;
                gone += affected(samples)?;
                for (period, before) in [(Period::Hour, hours_before), (Period::Day, days_before)] {
                    let done = sqlx::query("DELETE FROM metrics_rollups WHERE period = $1 AND start < $2")
                        .bind(period.as_str())
                        .bind(before)
                        .execute(&mut *tx)
                        .await;
                    gone += affected(done)?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(gone)
            }
        }
    };
}
