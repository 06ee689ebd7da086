/**
 * Channel on which the broker announces new messages; the payload is `<channel>|<partitions>`
 * (comma-separated), so that only the workers of those partitions fetch.
 */
export const BROKER_NOTIFY_CHANNEL = 'ferry_broker';

/*
 * One statement, so one round trip and one transaction: reserve a run of sequence numbers per
 * partition (the partition row stays locked until commit, so a partition's commits happen in
 * seq order and a reader never skips a row that commits late), insert the messages, and notify
 * subscribers. Partitions are locked in sorted order so that concurrent publishers cannot deadlock.
 */
export const PUBLISH_SQL = `
  WITH counts AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]) AS c(channel, partition, n)
  ), seqs AS (
    INSERT INTO ferry_broker.partitions AS p (channel, partition, next_seq)
    SELECT channel, partition, n + 1 FROM counts ORDER BY channel, partition
    ON CONFLICT (channel, partition) DO UPDATE SET next_seq = p.next_seq + EXCLUDED.next_seq - 1
    RETURNING p.channel, p.partition, p.next_seq
  ), inserted AS (
    INSERT INTO ferry_broker.messages (channel, partition, seq, message_id, partition_key, headers, body)
    SELECT m.channel, m.partition, s.next_seq - c.n + m.idx - 1, m.message_id, m.partition_key, m.headers, m.body
      FROM unnest($4::text[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::jsonb[], $10::text[])
             AS m(channel, partition, idx, message_id, partition_key, headers, body)
      JOIN seqs s USING (channel, partition)
      JOIN counts c USING (channel, partition)
    RETURNING 1
  )
  SELECT pg_notify('${BROKER_NOTIFY_CHANNEL}', d.channel || '|' || d.partitions)
    FROM (SELECT channel, string_agg(partition::text, ',') AS partitions FROM counts GROUP BY channel) AS d
   WHERE EXISTS (SELECT 1 FROM inserted)`;
