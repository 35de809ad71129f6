import Foundation
import Logging
import Metrics
import RabbitMQ
import ServiceSupport
import VoteShared
import VoteStore

/// Drains the vote queue into the store: batches of up to N votes or T milliseconds, one
/// store transaction per batch (counters and vote ids together), then one multiple-ack.
///
/// A vote is acknowledged only after the transaction that counted it committed; a
/// redelivered vote finds its id already stored and is not counted again. Messages that
/// cannot be decoded are rejected without requeue, which dead-letters them.
///
/// The batch rules are `BatchStateMachine`'s; `BatchDrainer` carries them out. This type
/// owns the thread, the connection with its backoff — and, given the nodes of a cluster,
/// which node to connect to (`BrokerRotation`: the next one after a broker error) — and the
/// pruning of old vote ids.
final class VoteConsumer: BlockingWorker {
    private let configuration: ConsumerConfiguration
    private let urls: [AMQPURL]
    private let stop = StopRequest()
    private let logger: Logger
    private let metrics: ConsumerMetrics
    private let drainer: BatchDrainer

    /// A consumer of the first broker of `urls` that moves to the next one when a broker fails.
    init(configuration: ConsumerConfiguration, urls: [AMQPURL], validator: VoteValidator) {
        self.configuration = configuration
        self.urls = urls
        let logger = Logger(label: "VoteConsumer")
        let metrics = ConsumerMetrics()
        self.logger = logger
        self.metrics = metrics
        drainer = BatchDrainer(
            batchSize: configuration.batchSize, batchMillis: configuration.batchMillis,
            deadLetterQueue: configuration.common.deadLetterQueue, validator: validator, metrics: metrics, logger: logger
        )
    }

    /// Asks the loop to finish its batch and stop.
    func requestStop() {
        stop.request()
    }

    private var isStopping: Bool { stop.isRequested }

    func runBlocking() {
        var store: (any VoteStore)?
        var connection: AMQPConnection?
        var backoff: Duration = .milliseconds(100)
        var rotation = BrokerRotation(count: urls.count)
        var lastPrune = ContinuousClock.now - .seconds(3600)
        while !isStopping {
            do {
                if store == nil {
                    let opened = try configuration.store.open()
                    let guarantee = try opened.prepareForWriting()
                    metrics.counting(guarantee)
                    var metadata: Logger.Metadata = ["store": "\(configuration.store.kind.rawValue)", "location": "\(configuration.store.location)", "counting": "\(guarantee.rawValue)"]
                    if configuration.store.kind == .mongodb { metadata["counter_shard"] = "\(configuration.store.counterShard)" }
                    if guarantee == .exactlyOnce {
                        logger.info("Store ready", metadata: metadata)
                    } else {
                        logger.warning("Store ready without transactions: a vote redelivered after a crash may be counted twice", metadata: metadata)
                    }
                    store = opened
                }
                if connection == nil {
                    connection = try connect(to: urls[rotation.current])
                    backoff = .milliseconds(100)
                    if let failover = rotation.connected() { failedOver(failover) }
                }
                guard let store, let connection else { continue }
                // Votes are checked against the store's polls: never drain without them.
                try drainer.validator.catalog.refreshIfStale()
                try drainer.drainOneBatch(from: AMQPDeliverySource(connection), into: store, isStopping: { isStopping })
                if ContinuousClock.now - lastPrune > .seconds(60) {
                    lastPrune = .now
                    prune(store)
                }
            } catch let error as AMQPError {
                if connection != nil { metrics.brokerDown() }
                connection = nil
                logger.error("RabbitMQ connection failed", metadata: ["broker": "\(urls[rotation.current])", "error": "\(error)", "retry_in_ms": "\(backoff.wholeMilliseconds)"])
                rotation.failed()
                sleep(backoff)
                backoff = min(backoff * 2, .seconds(5))
            } catch let error as StoreError where error.isPermanent {
                logger.critical("The store refuses this consumer; stopping", metadata: ["error": "\(error)", "location": "\(configuration.store.location)"])
                exit(78)  // EX_CONFIG: a supervisor's restarts meet the same refusal, logged each time
            } catch {
                // The store failed: drop the connection too, so unacknowledged votes are redelivered.
                logger.error("Store write failed; votes will be redelivered", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff.wholeMilliseconds)"])
                store = nil
                connection = nil
                metrics.brokerDown()
                sleep(backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        logger.info("Consumer stopped")
    }

    private func failedOver(_ failover: BrokerRotation.Failover) {
        let to = urls[failover.to]
        metrics.failedOver(to: "\(to.host):\(to.port)")
        logger.warning("Failed over to another RabbitMQ node", metadata: ["from": "\(urls[failover.from])", "to": "\(to)"])
    }

    private func connect(to url: AMQPURL) throws(AMQPError) -> AMQPConnection {
        let connection = try AMQPConnection(url: url, heartbeat: .seconds(configuration.common.amqpHeartbeatSeconds))
        let common = configuration.common
        try connection.declareQueue(common.deadLetterQueue, quorum: common.quorumQueue, deadLetterQueue: nil)
        let backlog = try connection.declareQueue(common.queue, quorum: common.quorumQueue, deadLetterQueue: common.deadLetterQueue)
        try connection.setPrefetch(UInt16(configuration.prefetch))
        try connection.startConsuming(common.queue)
        metrics.brokerUp()
        logger.info("Consuming votes", metadata: ["broker": "\(url)", "queue": "\(common.queue)", "backlog": "\(backlog)"])
        return connection
    }

    private func prune(_ store: any VoteStore) {
        let cutoff = configuration.dedupWindow.pruneCutoff(nowMillis: Timestamp.nowMillis())
        do {
            let removed = try store.forgetVoteIDs(acceptedBefore: cutoff)
            if removed > 0 { logger.info("Forgot old vote ids", metadata: ["removed": "\(removed)"]) }
        } catch {
            logger.warning("Could not prune vote ids", metadata: ["error": "\(error)"])
        }
    }

    /// Waits out a backoff; a stop request ends the wait at once.
    private func sleep(_ duration: Duration) {
        stop.wait(for: duration)
    }
}

/// The consumer's metrics (names shared with the dashboards in monitoring/).
struct ConsumerMetrics: Sendable {
    /// Bucket bounds for `paredao_consumer_batch_size`.
    static let batchSizeBuckets: [Double] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    private let batchSize = Recorder(label: "paredao_consumer_batch_size", aggregate: true)
    private let commitLatency = Metrics.Timer(label: "paredao_consumer_commit_seconds")
    private let counted = Counter(label: "paredao_consumer_votes_counted_total")
    private let duplicates = Counter(label: "paredao_consumer_duplicates_total")
    private let brokerGauge = Gauge(label: "paredao_consumer_broker_up")
    private let storeRetries = Counter(label: "paredao_consumer_store_retries_total")
    private let exactlyOnce = Gauge(label: "paredao_consumer_counting_exactly_once")

    func committed(batchSize size: Int, outcome: RecordOutcome, elapsed: Duration) {
        batchSize.record(size)
        commitLatency.recordNanoseconds(elapsed.wholeNanoseconds)
        counted.increment(by: outcome.counted)
        if outcome.duplicates > 0 { duplicates.increment(by: outcome.duplicates) }
        if outcome.retries > 0 { storeRetries.increment(by: outcome.retries) }
    }

    /// What the store promised when it was opened: 1 exactly once, 0 at least once.
    func counting(_ guarantee: CountingGuarantee) {
        exactlyOnce.record(guarantee == .exactlyOnce ? 1 : 0)
    }

    /// A message sent to the dead-letter queue, by why (`undecodable`, `unknown_poll`, …).
    func deadLettered(reason: String) {
        Counter(label: "paredao_consumer_dead_lettered_total", dimensions: [("reason", reason)]).increment()
    }
    /// A connection opened on another cluster node than the one before (`host:port`).
    func failedOver(to address: String) {
        Counter(label: "paredao_amqp_failovers_total", dimensions: [("to", address)]).increment()
    }
    func brokerUp() { brokerGauge.record(1) }
    func brokerDown() { brokerGauge.record(0) }
}
