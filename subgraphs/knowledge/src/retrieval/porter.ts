/** The Porter stemmer lives in the platform kit (platform/src/text/porter.ts). */
export { porterStem } from '@jarvis/platform';
