/** Version of the local extractor's rules; apart from extractor.ts so reading it does not load compromise. */
export const LOCAL_EXTRACTOR_VERSION = "local-nlp-v2";
