import Foundation

/// The API's timestamp formats.
public enum KubeTime {
    /// metav1.Time: RFC 3339 in UTC with seconds, `2024-05-01T12:00:00Z`.
    public static func time(_ date: Date) -> String {
        format(date, fractional: false)
    }

    /// metav1.MicroTime: RFC 3339 with microseconds, `2024-05-01T12:00:00.123456Z` (a Lease's renewTime).
    public static func microTime(_ date: Date) -> String {
        format(date, fractional: true)
    }

    /// Parses either format (nil if neither).
    public static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    private static func format(_ date: Date, fractional: Bool) -> String {
        var time = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        var text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                          Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        if fractional {
            let micros = Int((date.timeIntervalSince1970 - Double(time)) * 1_000_000) % 1_000_000
            text += String(format: ".%06d", micros)
        }
        return text + "Z"
    }
}
