/** Public surface of src/weights: config.json parsing and safetensors checkpoint reading (no GPU code). */
export * from "./config.ts";
export * from "./checkpoint.ts";
export * from "./linear.ts";
export * from "./model_file_error.ts";
export { type Dtype, DTYPE_BYTES } from "./dtype.ts";
