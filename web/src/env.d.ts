/** Settings the page that serves the console may set before it loads (the gateway injects them). */
interface JarvisSettings {
  /** The gateway runs trusted documents only: send each document's hash without its text. */
  trustedDocuments?: boolean;
}

interface Window {
  __JARVIS__?: JarvisSettings;
}
