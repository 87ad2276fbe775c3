extension Kernels {
    /// RMSNorm of each of `rows` vectors of `dimension` elements:
    /// `y = x / sqrt(mean(x²) + epsilon) · weight`. `output` may equal `input`.
    public static func rmsNorm(
        _ input: UnsafePointer<Float>,
        weight: UnsafePointer<Float>,
        epsilon: Float,
        rows: Int,
        dimension: Int,
        output: UnsafeMutablePointer<Float>
    ) {
        for row in 0..<rows {
            let x = input + row * dimension
            let y = output + row * dimension
            let meanSquare = dot(x, x, count: dimension) / Float(dimension)
            let inverseRoot = 1 / (meanSquare + epsilon).squareRoot()
            for i in 0..<dimension {
                y[i] = weight[i] * (x[i] * inverseRoot)
            }
        }
    }
}
