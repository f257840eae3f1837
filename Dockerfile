# One image for every Jarvis service; the command picks which one runs.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0
COPY package.json package-lock.json ./
COPY platform/package.json platform/
COPY gateway/package.json gateway/
COPY subgraphs/tenancy/package.json subgraphs/tenancy/
COPY subgraphs/knowledge/package.json subgraphs/knowledge/
COPY subgraphs/chat/package.json subgraphs/chat/
COPY subgraphs/usage/package.json subgraphs/usage/
RUN npm ci --omit=dev && npm cache clean --force
COPY . .
USER node
EXPOSE 4000 4001 4002 4003 4004
CMD ["node", "--import", "tsx", "scripts/serve.ts", "gateway"]
