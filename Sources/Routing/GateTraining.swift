import Foundation

/// Multinomial logistic regression for `GateRouter`: deterministic
/// full-batch gradient descent on standardized features.
///
/// 1. Each feature j is standardized, `z_j = (x_j - mean_j) / std_j`, with
///    the population standard deviation over the training set, floored at
///    `1e-4` times the root mean square of all deviations so that a
///    near-constant feature cannot get a huge weight.
/// 2. The loss is the mean cross-entropy of `softmax(W z + b)` plus
///    `l2 / 2 · |W|²` (the bias is not penalized).
/// 3. Gradient descent runs `iterations` steps from `W = 0, b = 0` with step
///    `1 / L`, where `L = max(λ, 1) / 2 + l2` bounds the curvature. λ is
///    the largest eigenvalue of `ZᵀZ / N`, estimated by 100 power iterations
///    and raised by 5 % to cover the estimate's error.
/// 4. The standardization is folded into the result, so the gate applies to
///    raw pooled states: `W' = W / std`, `b' = b - W' · mean`.
public struct GateTraining: Sendable {
    public var l2: Double
    public var iterations: Int

    public static let defaultL2 = 0.01
    public static let defaultIterations = 1000

    public init(l2: Double = GateTraining.defaultL2, iterations: Int = GateTraining.defaultIterations) {
        self.l2 = l2
        self.iterations = iterations
    }

    public struct Result: Sendable {
        /// `[classes, features]`, row-major.
        public let weight: [Float]
        public let bias: [Float]
        /// Mean cross-entropy on the training set at the end, without the penalty.
        public let trainingLoss: Double
    }

    /// Fits a gate to `features` (one row per example) and `labels` (class
    /// index per example, each of `0..<classCount` present at least once).
    public func fit(features: [[Float]], labels: [Int], classCount: Int) throws -> Result {
        try validate(features: features, labels: labels, classCount: classCount)
        let count = features.count
        let dimension = features[0].count

        // 1. Standardize.
        var mean = [Double](repeating: 0, count: dimension)
        for row in features {
            for j in 0..<dimension { mean[j] += Double(row[j]) }
        }
        mean = mean.map { $0 / Double(count) }
        var deviation = [Double](repeating: 0, count: dimension)
        for row in features {
            for j in 0..<dimension {
                let difference = Double(row[j]) - mean[j]
                deviation[j] += difference * difference
            }
        }
        deviation = deviation.map { ($0 / Double(count)).squareRoot() }
        let rootMeanSquare = (deviation.reduce(0) { $0 + $1 * $1 } / Double(dimension)).squareRoot()
        let floor = rootMeanSquare > 0 ? 1e-4 * rootMeanSquare : 1
        deviation = deviation.map { max($0, floor) }
        let standardized: [[Double]] = features.map { row in
            (0..<dimension).map { (Double(row[$0]) - mean[$0]) / deviation[$0] }
        }

        // 2–3. Gradient descent.
        let curvature = max(Self.largestEigenvalue(standardized) * 1.05, 1) / 2 + l2
        let step = 1 / curvature
        var weight = [Double](repeating: 0, count: classCount * dimension)
        var bias = [Double](repeating: 0, count: classCount)
        for _ in 0..<iterations {
            var weightGradient = weight.map { l2 * $0 }
            var biasGradient = [Double](repeating: 0, count: classCount)
            for (row, label) in zip(standardized, labels) {
                var probabilities = Self.probabilities(row, weight: weight, bias: bias, classCount: classCount)
                probabilities[label] -= 1
                for k in 0..<classCount {
                    let g = probabilities[k] / Double(count)
                    biasGradient[k] += g
                    let offset = k * dimension
                    for j in 0..<dimension { weightGradient[offset + j] += g * row[j] }
                }
            }
            for index in weight.indices { weight[index] -= step * weightGradient[index] }
            for k in 0..<classCount { bias[k] -= step * biasGradient[k] }
        }
        var loss = 0.0
        for (row, label) in zip(standardized, labels) {
            loss -= Foundation.log(max(Self.probabilities(row, weight: weight, bias: bias, classCount: classCount)[label], .leastNormalMagnitude))
        }

        // 4. Fold the standardization into W and b.
        var folded = [Float](repeating: 0, count: classCount * dimension)
        var foldedBias = [Float](repeating: 0, count: classCount)
        for k in 0..<classCount {
            var shift = 0.0
            for j in 0..<dimension {
                let value = weight[k * dimension + j] / deviation[j]
                folded[k * dimension + j] = Float(value)
                shift += value * mean[j]
            }
            foldedBias[k] = Float(bias[k] - shift)
        }
        return Result(weight: folded, bias: foldedBias, trainingLoss: loss / Double(count))
    }

    private func validate(features: [[Float]], labels: [Int], classCount: Int) throws {
        guard l2.isFinite, l2 >= 0 else {
            throw RouterError.invalidParameter(name: "l2", expected: "a number of 0 or more", actual: "\(l2)")
        }
        guard iterations >= 1 else {
            throw RouterError.invalidParameter(name: "iterations", expected: "at least 1", actual: "\(iterations)")
        }
        guard classCount >= 2 else {
            throw RouterError.invalidParameter(name: "classes", expected: "at least 2 experts to tell apart", actual: "\(classCount)")
        }
        guard let dimension = features.first?.count, dimension > 0 else {
            throw RouterError.invalidParameter(name: "features", expected: "at least one non-empty example", actual: "none")
        }
        guard labels.count == features.count else {
            throw RouterError.dimensionMismatch(what: "label list", expected: features.count, actual: labels.count)
        }
        for row in features {
            guard row.count == dimension else {
                throw RouterError.dimensionMismatch(what: "feature row", expected: dimension, actual: row.count)
            }
            guard row.allSatisfy({ $0.isFinite }) else {
                throw RouterError.invalidParameter(name: "features", expected: "finite values", actual: "NaN or infinity")
            }
        }
        for label in labels where label < 0 || label >= classCount {
            throw RouterError.invalidParameter(name: "label", expected: "0..<\(classCount)", actual: "\(label)")
        }
        for k in 0..<classCount where !labels.contains(k) {
            throw RouterError.invalidParameter(name: "labels", expected: "at least one example of class \(k)", actual: "none")
        }
    }

    private static func probabilities(_ row: [Double], weight: [Double], bias: [Double], classCount: Int) -> [Double] {
        let dimension = row.count
        let logits = (0..<classCount).map { k in
            var sum = bias[k]
            for j in 0..<dimension { sum += weight[k * dimension + j] * row[j] }
            return sum
        }
        return routerSoftmax(logits, temperature: 1)
    }

    /// Estimates the largest eigenvalue of `ZᵀZ / N` by power iteration from
    /// a fixed start vector, so the result is deterministic.
    static func largestEigenvalue(_ rows: [[Double]]) -> Double {
        let dimension = rows[0].count
        var vector = (0..<dimension).map { Foundation.sin(Double($0) + 1) }
        var estimate = 0.0
        for _ in 0..<100 {
            guard let unit = routerUnitVector(vector) else { return 0 }
            let projections = rows.map { routerDot($0, unit) }
            var next = [Double](repeating: 0, count: dimension)
            for (row, projection) in zip(rows, projections) {
                for j in 0..<dimension { next[j] += projection * row[j] / Double(rows.count) }
            }
            estimate = routerDot(next, unit)
            vector = next
        }
        return estimate
    }
}
