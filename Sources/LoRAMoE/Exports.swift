// The LoRAMoE library product: one import for the whole engine.
@_exported import Adapters
@_exported import Generation
@_exported import JSON
@_exported import Models
@_exported import Routing
@_exported import SafeTensors
@_exported import Tensor
@_exported import Tokenizers
