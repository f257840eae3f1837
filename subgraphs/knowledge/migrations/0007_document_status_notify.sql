-- A document's status changes are announced on the `knowledge_document_status` channel when their transaction
-- commits, to every knowledge replica listening on the database: that is what the documentStatusChanged
-- subscription follows. The payload names the document, never its content; listeners read it under the
-- subscriber's own tenant and access rules. A trigger, so no path that changes a status can forget it.
CREATE FUNCTION notify_document_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('knowledge_document_status', json_build_object(
    'tenantId', NEW.tenant_id, 'knowledgeBaseId', NEW.knowledge_base_id, 'documentId', NEW.id, 'status', NEW.status)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER documents_status_announced_on_insert AFTER INSERT ON documents
  FOR EACH ROW EXECUTE FUNCTION notify_document_status();
CREATE TRIGGER documents_status_announced_on_update AFTER UPDATE OF status ON documents
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION notify_document_status();
