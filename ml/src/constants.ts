/** Constants of the pipeline that several stages share (a leaf module: it imports nothing). */

/** The pipeline seed: split hashing, initialisation and shuffling all derive from it. */
export const SEED = 20_240_601;

/** The longest text (UTF-16 code units, i.e. JavaScript string length) the models accept. */
export const MAX_TEXT_CHARS = 20_000;

/** How examples are assigned to train / validation / test (the rest). */
export const SPLIT_CONFIG = { seed: SEED, trainFraction: 0.6, validationFraction: 0.2 } as const;

/** The size gate of every model.onnx. */
export const MAX_MODEL_BYTES = 5 * 1024 * 1024;

/** The model every candidate is compared with (the primary that `npm start` serves). */
export const BASELINE_MODEL = "spam-v1";
