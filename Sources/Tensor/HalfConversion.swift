/// Widens a bfloat16 bit pattern to `Float`; exact, because bfloat16 is the
/// upper half of an IEEE binary32.
@inline(__always)
public func floatFromBFloat16(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Rounds a `Float` to the nearest bfloat16, ties to even (what PyTorch's
/// `.to(torch.bfloat16)` does). NaN stays NaN.
@inline(__always)
public func bfloat16FromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
    let roundingBias = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
}

/// Widens an IEEE binary16 bit pattern to `Float` (exact for every value,
/// subnormals included).
@inline(__always)
public func floatFromFloat16(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0x1F {
        // Infinity or NaN.
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    if exponent != 0 {
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
    // Zero or subnormal: mantissa · 2^-24, exact in binary32.
    let magnitude = Float(mantissa) * 0x1p-24
    return sign != 0 ? -magnitude : magnitude
}

/// Rounds a `Float` to the nearest binary16, ties to even; overflow gives
/// infinity, as PyTorch's `.to(torch.float16)` does.
public func float16FromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    var mantissa = bits & 0x7F_FFFF

    if exponent == 0xFF {
        return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0)
    }
    let halfExponent = exponent - 127 + 15
    if halfExponent >= 0x1F {
        return sign | 0x7C00
    }
    if halfExponent <= 0 {
        // Subnormal in binary16 (or zero after rounding).
        if halfExponent < -10 { return sign }
        mantissa |= 0x80_0000
        let shift = UInt32(14 - halfExponent)
        var half = mantissa >> shift
        let remainder = mantissa & ((1 << shift) - 1)
        let halfway: UInt32 = 1 << (shift - 1)
        if remainder > halfway || (remainder == halfway && (half & 1) == 1) { half += 1 }
        return sign | UInt16(truncatingIfNeeded: half)
    }
    var half = (UInt32(halfExponent) << 10) | (mantissa >> 13)
    let remainder = mantissa & 0x1FFF
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    if remainder > 0x1000 || (remainder == 0x1000 && (half & 1) == 1) { half += 1 }
    return sign | UInt16(truncatingIfNeeded: half)
}
