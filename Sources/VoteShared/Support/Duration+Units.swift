extension Duration {
    /// The duration in whole nanoseconds (for metrics timers).
    public var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The duration in whole milliseconds (for logs and `poll`).
    public var wholeMilliseconds: Int64 {
        wholeNanoseconds / 1_000_000
    }

    /// The duration in seconds (for Foundation's sleeps and deadlines).
    public var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
