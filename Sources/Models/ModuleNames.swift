extension ModelConfig {
    /// Names of the modules a transformers `*ForCausalLM` of this config has,
    /// as `named_modules()` lists them (containers included, the root
    /// excluded). PEFT matches `target_modules` against these names.
    public var moduleNames: [String] {
        var names = ["model", "model.embed_tokens", "model.layers"]
        for layer in 0..<numHiddenLayers {
            let prefix = "model.layers.\(layer)"
            names.append(prefix)
            names.append("\(prefix).self_attn")
            for kind in [ProjectionKind.qProj, .kProj, .vProj, .oProj] {
                names.append("\(prefix).self_attn.\(kind.rawValue)")
            }
            if queryKeyNorm {
                names.append("\(prefix).self_attn.q_norm")
                names.append("\(prefix).self_attn.k_norm")
            }
            names.append("\(prefix).mlp")
            for kind in [ProjectionKind.gateProj, .upProj, .downProj] {
                names.append("\(prefix).mlp.\(kind.rawValue)")
            }
            names.append("\(prefix).mlp.act_fn")
            names.append("\(prefix).input_layernorm")
            names.append("\(prefix).post_attention_layernorm")
        }
        names += ["model.norm", "model.rotary_emb", "lm_head"]
        return names
    }

    /// `(in, out)` features of a projection.
    public func features(of kind: ProjectionKind) -> (in: Int, out: Int) {
        switch kind {
        case .qProj: return (hiddenSize, queryWidth)
        case .kProj, .vProj: return (hiddenSize, keyValueWidth)
        case .oProj: return (queryWidth, hiddenSize)
        case .gateProj, .upProj: return (hiddenSize, intermediateSize)
        case .downProj: return (intermediateSize, hiddenSize)
        }
    }

    /// The projection a module name refers to, or nil for any other module.
    public func projection(named moduleName: String) -> ProjectionID? {
        let parts = moduleName.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "model", parts[1] == "layers",
              let layer = Int(parts[2]), layer >= 0, layer < numHiddenLayers, String(layer) == parts[2],
              let kind = ProjectionKind(rawValue: String(parts[4])), parts[3] == kind.parentModule
        else { return nil }
        return ProjectionID(layer: layer, kind: kind)
    }
}
