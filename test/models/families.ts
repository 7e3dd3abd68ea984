/** The tiny family fixtures made by test/fixtures/families/make.py. */
export const FAMILIES = ['llama3', 'qwen2', 'mistral', 'phi3'] as const;

/** The Hugging Face model directory of a family fixture. */
export const familyDir = (family: string): string => new URL(`../fixtures/families/${family}/model`, import.meta.url).pathname;
